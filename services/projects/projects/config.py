"""Settings of the projects service beyond the shared ones: how to reach the users service."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from atlas_common.config import env_float, env_int, env_url


@dataclass(frozen=True)
class UsersServiceSettings:
    url: str | None  # None: the owner check is off (projects-only deployments)
    timeout: float
    retries: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> UsersServiceSettings:
        return cls(
            url=env_url(env, "USERS_SERVICE_URL"),
            timeout=env_float(env, "USERS_SERVICE_TIMEOUT", 2.0, 0.05, 60.0),
            retries=env_int(env, "USERS_SERVICE_RETRIES", 2, 0, 10),
        )
