"""Settings are validated at start, and a bad one stops the service with a message naming it."""

from __future__ import annotations

import pytest
from atlas_common.config import ConfigError, GunicornSettings, Settings
from projects.config import UsersServiceSettings

from tests.support.processes import ServiceProcess


def test_defaults():
    settings = Settings.from_env({})
    assert (settings.pool_size, settings.connect_timeout, settings.statement_timeout_ms) == (4, 3, 5000)
    assert (settings.max_body_bytes, settings.log_level, settings.db_wait_seconds) == (65536, "INFO", 120)
    server = GunicornSettings.from_env({})
    assert (server.bind, server.workers, server.threads, server.timeout, server.graceful_timeout) == (
        "0.0.0.0:8080", 2, 4, 30, 20,
    )  # fmt: skip
    users = UsersServiceSettings.from_env({})
    assert (users.url, users.timeout, users.retries) == (None, 2.0, 2)


def test_pool_size_follows_threads_unless_set():
    assert Settings.from_env({"GUNICORN_THREADS": "8"}).pool_size == 8
    assert Settings.from_env({"GUNICORN_THREADS": "8", "ATLAS_DB_POOL_SIZE": "3"}).pool_size == 3


@pytest.mark.parametrize(
    ("loader", "variable", "value", "says"),
    [
        (Settings, "ATLAS_DB_POOL_SIZE", "x", "ATLAS_DB_POOL_SIZE must be an integer between 1 and 100, got 'x'"),
        (Settings, "ATLAS_DB_POOL_SIZE", "0", "ATLAS_DB_POOL_SIZE must be an integer between 1 and 100, got '0'"),
        (Settings, "ATLAS_DB_STATEMENT_TIMEOUT_MS", "-5", "ATLAS_DB_STATEMENT_TIMEOUT_MS must be an integer"),
        (Settings, "ATLAS_MAX_BODY_BYTES", "1.5", "ATLAS_MAX_BODY_BYTES must be an integer"),
        (Settings, "ATLAS_DB_WAIT_SECONDS", "3601", "ATLAS_DB_WAIT_SECONDS must be an integer between 0 and 3600"),
        (Settings, "ATLAS_LOG_LEVEL", "LOUD", "ATLAS_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR"),
        (GunicornSettings, "GUNICORN_BIND", "8080", "GUNICORN_BIND must be HOST:PORT"),
        (GunicornSettings, "GUNICORN_WORKERS", "many", "GUNICORN_WORKERS must be an integer"),
        (UsersServiceSettings, "USERS_SERVICE_URL", "users:80", "USERS_SERVICE_URL must be an http(s) base URL"),
        (UsersServiceSettings, "USERS_SERVICE_TIMEOUT", "nan", "USERS_SERVICE_TIMEOUT must be a number"),
        (UsersServiceSettings, "USERS_SERVICE_RETRIES", "11", "USERS_SERVICE_RETRIES must be an integer between 0"),
    ],
)
def test_bad_values_name_the_variable(loader, variable, value, says):
    with pytest.raises(ConfigError) as raised:
        loader.from_env({variable: value})
    assert str(raised.value).startswith(f"invalid configuration: {says}")


def test_log_level_is_case_insensitive_and_url_loses_its_slash():
    assert Settings.from_env({"ATLAS_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    assert UsersServiceSettings.from_env({"USERS_SERVICE_URL": "http://users:80/"}).url == "http://users:80"


@pytest.mark.parametrize(
    ("service", "variable", "value"),
    [
        ("users", "ATLAS_DB_POOL_SIZE", "x"),
        ("users", "GUNICORN_TIMEOUT", "0"),
        ("projects", "USERS_SERVICE_URL", "ftp://u"),
    ],
)
def test_gunicorn_refuses_to_start_with_a_bad_setting(service, variable, value):
    server = ServiceProcess(service, env={variable: value}).start(wait_path=None)
    try:
        server.proc.wait(timeout=20)
    finally:
        server.stop()
    assert server.proc.returncode != 0
    logs = server.logs()
    assert f"invalid configuration: {variable}" in logs
    assert "Traceback" not in logs
