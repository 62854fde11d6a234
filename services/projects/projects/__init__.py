"""Atlas Project Management service."""

from atlas_common.config import AuthSettings, Settings

from projects.config import UsersServiceSettings

VERSION = "0.1.0"

# The settings blocks this service reads, in its chart values' order (scripts/chart-settings.py reads this).
SETTINGS = (Settings, AuthSettings, UsersServiceSettings)
