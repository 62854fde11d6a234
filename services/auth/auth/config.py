"""Settings of the auth service beyond the shared ones (chart block ``tokens``): the tokens it issues.
Declared as atlas_common.config declares the shared ones; see there. The issuer and audience are the shared
``AuthSettings`` (atlas_common.config), which every service reads."""

from __future__ import annotations

from typing import ClassVar

from atlas_common.config import SettingsBlock, setting


class TokenSettings(SettingsBlock):
    chart_block: ClassVar[str] = "tokens"

    lifetime: int = setting(
        900,
        env="ATLAS_AUTH_TOKEN_LIFETIME",
        chart="lifetime",
        doc="seconds an access token is valid (its exp - iat, the token response's expires_in)",
        ge=60,
        le=86400,
    )
    signing_key_file: str | None = setting(
        None,
        env="ATLAS_AUTH_SIGNING_KEY_FILE",
        env_only="the chart mounts the signing keys' Secret and sets the path",
        allowed="a readable PEM file of private keys (EC P-256 or RSA of 2048 bits or more)",
        doc="the token signing keys: the first signs, all are published (two during a rotation)",
    )
