"""Settings of the projects service beyond the shared ones: how to reach the users service (chart block
``usersService``). Declared as atlas_common.config declares the shared ones; see there."""

from __future__ import annotations

from typing import ClassVar

from atlas_common.config import BaseUrl, SettingsBlock, setting


class UsersServiceSettings(SettingsBlock):
    chart_block: ClassVar[str] = "usersService"

    url: BaseUrl = setting(
        None,
        env="USERS_SERVICE_URL",
        env_only="the chart wires it to the users Service, only when users.enabled",
        allowed="an http(s) base URL such as http://users:80",
        doc="base URL of the users service; unset turns the owner check off",
    )
    timeout: float = setting(
        2.0, env="USERS_SERVICE_TIMEOUT", chart="timeout", doc="seconds per call to the users service", ge=0.05, le=60
    )
    retries: int = setting(
        2,
        env="USERS_SERVICE_RETRIES",
        chart="retries",
        doc="retries on connection errors and 5xx, with exponential backoff",
        ge=0,
        le=10,
    )
