"""Settings are validated at start, and a bad one stops the service with one line naming it."""

from __future__ import annotations

import importlib

import pytest
from atlas_common.config import AuthSettings, ConfigError, Settings, SettingsBlock, setting
from auth.config import TokenSettings
from projects.config import UsersServiceSettings

from tests.support.processes import ServiceProcess

SERVICES = ("users", "projects", "auth")
# A value each non-numeric setting refuses (numeric ones refuse "not-a-number").
REFUSED = {
    "ATLAS_LOG_LEVEL": "LOUD",
    "ATLAS_ACCESS_LOG": "probes",
    "ATLAS_BIND": "8080",
    "ATLAS_AUTH_ISSUER": "atlas.local",
    "ATLAS_AUTH_AUDIENCE": "two words",
    "ATLAS_AUTH_JWKS_URL": "ftp://auth/jwks.json",
    "USERS_SERVICE_URL": "users:80",
}


def test_defaults():
    settings = Settings.from_env({})
    assert (settings.pool_size, settings.connect_timeout, settings.statement_timeout_ms) == (4, 3, 5000)
    assert (settings.max_body_bytes, settings.log_level, settings.db_wait_seconds) == (65536, "INFO", 120)
    assert (settings.bind, settings.workers, settings.threads, settings.graceful_timeout) == ("0.0.0.0:8080", 2, 4, 20)
    assert (settings.worker_lifetime, settings.worker_max_rss, settings.access_log) == (None, None, "all")
    assert settings.metrics_dir == "/tmp/atlas-metrics"
    users = UsersServiceSettings.from_env({})
    assert (users.url, users.timeout, users.retries) == (None, 2.0, 2)
    auth = AuthSettings.from_env({})
    assert (auth.issuer, auth.audience, auth.jwks_url) == (None, "atlas", None)
    assert (auth.enabled, auth.keys_url, auth.token_url) == (False, None, None)
    tokens = TokenSettings.from_env({})
    assert (tokens.lifetime, tokens.signing_key_file) == (900, None)


def test_the_jwks_url_follows_the_issuer_unless_set():
    auth = AuthSettings.from_env({"ATLAS_AUTH_ISSUER": "http://atlas.local/"})
    assert (auth.issuer, auth.enabled) == ("http://atlas.local", True)
    assert auth.keys_url == "http://atlas.local/.well-known/jwks.json"
    assert auth.token_url == "http://atlas.local/oauth/token"
    auth = AuthSettings.from_env({"ATLAS_AUTH_ISSUER": "http://atlas.local", "ATLAS_AUTH_JWKS_URL": "http://auth:80/k"})
    assert auth.keys_url == "http://auth:80/k"
    assert AuthSettings.from_env({"ATLAS_AUTH_AUDIENCE": " atlas-prod "}).audience == "atlas-prod"


def test_the_environment_is_read_only_from_the_mapping_given(monkeypatch):
    monkeypatch.setenv("ATLAS_WORKERS", "7")
    assert Settings.from_env({}).workers == 2
    assert Settings.from_env().workers == 7  # default: os.environ
    assert Settings.from_env({"ATLAS_WORKERS": ""}).workers == 2  # empty or blank: unset
    assert Settings.from_env({"ATLAS_WORKERS": "  "}).workers == 2
    assert Settings.from_env({"gunicorn_workers": "9"}).workers == 2  # names match exactly


def test_pool_size_follows_threads_unless_set():
    assert Settings.from_env({"ATLAS_THREADS": "8"}).pool_size == 8
    assert Settings.from_env({"ATLAS_THREADS": "8", "ATLAS_DB_POOL_SIZE": "12"}).pool_size == 12
    assert Settings.from_env({"ATLAS_THREADS": "8", "ATLAS_DB_POOL_SIZE": "8"}).pool_size == 8


def test_a_pool_smaller_than_the_threads_is_refused_naming_both_and_why():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"ATLAS_THREADS": "8", "ATLAS_DB_POOL_SIZE": "3"})
    message = str(raised.value)
    assert message.startswith("invalid configuration: ATLAS_DB_POOL_SIZE (3) must be at least ATLAS_THREADS (8)")
    assert "threads wait for one and then answer 503" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("loader", "variable", "value", "says"),
    [
        (Settings, "ATLAS_DB_POOL_SIZE", "x", "ATLAS_DB_POOL_SIZE must be an integer between 1 and 100, got 'x'"),
        (Settings, "ATLAS_DB_POOL_SIZE", "0", "ATLAS_DB_POOL_SIZE must be an integer between 1 and 100, got '0'"),
        (Settings, "ATLAS_DB_STATEMENT_TIMEOUT_MS", "-5", "ATLAS_DB_STATEMENT_TIMEOUT_MS must be an integer"),
        (
            Settings,
            "ATLAS_MAX_BODY_BYTES",
            "1.5",
            "ATLAS_MAX_BODY_BYTES must be an integer between 1 and 67108864, got '1.5'",
        ),
        (Settings, "ATLAS_MAX_BODY_BYTES", "1e3", "ATLAS_MAX_BODY_BYTES must be an integer"),
        (Settings, "ATLAS_DB_WAIT_SECONDS", "3601", "ATLAS_DB_WAIT_SECONDS must be an integer between 0 and 3600"),
        (Settings, "ATLAS_LOG_LEVEL", "LOUD", "ATLAS_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'"),
        (Settings, "ATLAS_BIND", "8080", "ATLAS_BIND must be HOST:PORT such as 0.0.0.0:8080, got '8080'"),
        (Settings, "ATLAS_WORKERS", "many", "ATLAS_WORKERS must be an integer"),
        (UsersServiceSettings, "USERS_SERVICE_URL", "users:80", "USERS_SERVICE_URL must be an http(s) base URL"),
        (UsersServiceSettings, "USERS_SERVICE_TIMEOUT", "nan", "USERS_SERVICE_TIMEOUT must be a number between 0.05"),
        (UsersServiceSettings, "USERS_SERVICE_TIMEOUT", "inf", "USERS_SERVICE_TIMEOUT must be a number"),
        (UsersServiceSettings, "USERS_SERVICE_RETRIES", "11", "USERS_SERVICE_RETRIES must be an integer between 0"),
        (AuthSettings, "ATLAS_AUTH_ISSUER", "atlas.local", "ATLAS_AUTH_ISSUER must be an http(s) URL such as"),
        (AuthSettings, "ATLAS_AUTH_AUDIENCE", "a b", "ATLAS_AUTH_AUDIENCE must be one word such as atlas, got 'a b'"),
        (AuthSettings, "ATLAS_AUTH_JWKS_URL", "ftp://a/k", "ATLAS_AUTH_JWKS_URL must be an http(s) URL"),
        (TokenSettings, "ATLAS_AUTH_TOKEN_LIFETIME", "59", "ATLAS_AUTH_TOKEN_LIFETIME must be an integer between 60"),
        (TokenSettings, "ATLAS_AUTH_TOKEN_LIFETIME", "86401", "ATLAS_AUTH_TOKEN_LIFETIME must be an integer between"),
    ],
)
def test_bad_values_name_the_variable(loader, variable, value, says):
    with pytest.raises(ConfigError) as raised:
        loader.from_env({variable: value})
    assert str(raised.value).startswith(f"invalid configuration: {says}")
    assert "\n" not in str(raised.value)  # pydantic's multi-line text became one line


def test_every_bad_value_is_named_on_one_line():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"ATLAS_WORKERS": "0", "ATLAS_LOG_LEVEL": "LOUD"})
    assert str(raised.value) == (
        "invalid configuration: ATLAS_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'; "
        "ATLAS_WORKERS must be an integer between 1 and 32, got '0'"
    )


def test_log_level_is_case_insensitive_and_url_loses_its_slash():
    assert Settings.from_env({"ATLAS_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    assert UsersServiceSettings.from_env({"USERS_SERVICE_URL": "http://users:80/"}).url == "http://users:80"
    assert UsersServiceSettings.from_env({"USERS_SERVICE_URL": "  "}).url is None


def test_bounds_are_inclusive_and_accept_their_extremes():
    """Each numeric setting at its declared minimum and maximum is accepted; one step past is refused."""
    for block in (Settings, UsersServiceSettings, TokenSettings):
        for d in block.declared():
            if d.kind not in ("integer", "number"):
                continue
            step = 1 if d.kind == "integer" else 0.01
            top = d.maximum if d.maximum is not None else 10**9
            for value in (d.minimum, top):
                env = {d.env: str(value)}
                if d.follows:  # a value below the field it follows is a different refusal
                    env[next(o.env for o in block.declared() if o.name == d.follows)] = str(d.minimum)
                assert getattr(block.from_env(env), d.name) == value
            for value in [d.minimum - step] + ([d.maximum + step] if d.maximum is not None else []):
                with pytest.raises(ConfigError, match=d.env):
                    block.from_env({d.env: str(value)})


def test_declarations_say_chart_key_or_why_not():
    with pytest.raises(TypeError, match="declare chart="):
        setting(1, env="X", doc="x", ge=0)
    with pytest.raises(TypeError, match="not both"):
        setting(1, env="X", doc="x", chart="x", env_only="y", ge=0)
    with pytest.raises(TypeError, match="needs because="):
        setting(1, env="X", doc="x", chart="x", follows="y", ge=0)

    class Unbounded(SettingsBlock):
        chart_block = "unbounded"
        n: int = setting(1, env="N", doc="n", chart="n", ge=1)

    (n,) = Unbounded.declared()
    assert (n.minimum, n.maximum, n.allowed()) == (1, None, "an integer of at least 1")
    assert Unbounded.from_env({"N": str(10**12)}).n == 10**12


@pytest.mark.parametrize("service", SERVICES)
def test_each_declared_block_is_read_when_the_app_is_built(service):
    """A service's SETTINGS are what its app reads: a bad value in any declared block stops it."""
    package = importlib.import_module(service)
    app = importlib.import_module(f"{service}.app")
    for block in package.SETTINGS:
        for d in block.declared():
            value = "not-a-number" if d.kind in ("integer", "number") else REFUSED.get(d.env)
            if value is None:
                continue  # any string will do (a path, a directory)
            with pytest.raises(ConfigError, match=d.env):
                app.create_app({d.env: value})


@pytest.mark.parametrize(
    ("service", "variable", "value"),
    [
        ("users", "ATLAS_DB_POOL_SIZE", "x"),
        ("users", "ATLAS_WORKER_LIFETIME", "59"),  # granian checks a lifetime of a minute at least
        ("users", "ATLAS_ACCESS_LOG", "probes"),
        ("users", "ATLAS_DB_POOL_SIZE", "1"),  # below ATLAS_THREADS
        ("projects", "USERS_SERVICE_URL", "ftp://u"),
        ("users", "ATLAS_AUTH_ISSUER", "atlas.local"),
        ("projects", "ATLAS_AUTH_JWKS_URL", "ftp://auth/jwks.json"),
        ("auth", "ATLAS_AUTH_TOKEN_LIFETIME", "59"),
        ("auth", "ATLAS_AUTH_ISSUER", ""),  # unset: the auth service needs it
    ],
)
def test_serve_refuses_to_start_with_a_bad_setting(service, variable, value):
    server = ServiceProcess(service, env={variable: value}, threads=2).start(wait_path=None)
    try:
        server.proc.wait(timeout=20)
    finally:
        server.stop()
    assert server.proc.returncode == 2  # as `migrate`: a usage error, before anything started
    logs = server.logs()
    assert f"invalid configuration: {variable}" in logs
    assert "Traceback" not in logs
