"""Settings from environment variables, validated once at start.

Database connection details are not here: libpq reads PGHOST, PGPORT, PGDATABASE, ... itself.
Every invalid value raises ConfigError naming the variable, so a bad deployment fails at start
with one readable line instead of at the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit


class ConfigError(RuntimeError):
    """An environment variable holds an invalid value. RuntimeError: gunicorn prints it without a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"invalid configuration: {message}")


def env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer between {low} and {high}, got {raw!r}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = None
    # `not low <= value` also rejects nan.
    if value is None or not low <= value <= high:
        raise ConfigError(f"{name} must be a number between {low:g} and {high:g}, got {raw!r}")
    return value


def env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().upper()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def env_url(env: Mapping[str, str], name: str) -> str | None:
    """An optional http(s) base URL, returned without a trailing slash; unset or empty -> None."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"{name} must be an http(s) base URL such as http://users:80, got {raw!r}")
    return raw.strip().rstrip("/")


@dataclass(frozen=True)
class GunicornSettings:
    bind: str
    workers: int
    threads: int
    timeout: int
    graceful_timeout: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> GunicornSettings:
        bind = env.get("GUNICORN_BIND", "").strip() or "0.0.0.0:8080"
        host, sep, port = bind.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(f"GUNICORN_BIND must be HOST:PORT such as 0.0.0.0:8080, got {bind!r}")
        return cls(
            bind=bind,
            workers=env_int(env, "GUNICORN_WORKERS", 2, 1, 64),
            threads=env_int(env, "GUNICORN_THREADS", 4, 1, 64),
            timeout=env_int(env, "GUNICORN_TIMEOUT", 30, 1, 3600),
            graceful_timeout=env_int(env, "GUNICORN_GRACEFUL_TIMEOUT", 20, 0, 3600),
        )


@dataclass(frozen=True)
class Settings:
    """What the shared app factory needs; services add their own settings next to it."""

    pool_size: int
    connect_timeout: int
    db_wait_seconds: int  # `migrate` only: how long to keep trying to reach the database
    statement_timeout_ms: int
    max_body_bytes: int
    log_level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        # One connection per gunicorn thread is the natural size: no thread ever waits for one.
        threads = env_int(env, "GUNICORN_THREADS", 4, 1, 64)
        return cls(
            pool_size=env_int(env, "ATLAS_DB_POOL_SIZE", threads, 1, 100),
            connect_timeout=env_int(env, "ATLAS_DB_CONNECT_TIMEOUT", 3, 1, 60),
            # Long enough for a first pull of the PostgreSQL image, short of helm's 600 s; 0: one attempt.
            db_wait_seconds=env_int(env, "ATLAS_DB_WAIT_SECONDS", 120, 0, 3600),
            statement_timeout_ms=env_int(env, "ATLAS_DB_STATEMENT_TIMEOUT_MS", 5000, 1, 3_600_000),
            max_body_bytes=env_int(env, "ATLAS_MAX_BODY_BYTES", 65536, 1, 64 * 1024 * 1024),
            log_level=env_choice(env, "ATLAS_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        )
