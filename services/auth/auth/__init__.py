"""Atlas auth service: issues OAuth 2.0 access tokens (client credentials grant) that users and projects check."""

from atlas_common.config import AuthSettings, Settings

from auth.commands import COMMANDS
from auth.config import TokenSettings

VERSION = "0.1.0"

# The settings blocks this service reads, in its chart values' order (scripts/chart-settings.py reads this).
SETTINGS = (Settings, AuthSettings, TokenSettings)

__all__ = ["COMMANDS", "SETTINGS", "VERSION"]
