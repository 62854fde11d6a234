"""Every setting of a service, declared once, parsed from the environment by pydantic-settings at start.

A settings class is one block of a service's chart values (its ``chart_block``): ``Settings`` is the
``config`` block every service has, ``AuthSettings`` (block ``authentication``: token checks) another one
every service lists; a service adds its own (projects: ``UsersServiceSettings``, block ``usersService``;
auth: ``TokenSettings``, block ``tokens``) and lists its blocks in ``SETTINGS`` in its package ``__init__``.
A block whose settings are all environment only (``AuthSettings``: the chart wires them) has no block in
the chart values; its variables are still in the generated table. Each field is made by
``setting()`` and holds all there is to know about the setting: name, type, bounds, default, one-line doc,
the environment variable (its validation alias) and the chart key (``json_schema_extra``), or why it is
environment only (what the chart wires itself, or the image's default). scripts/chart-settings.py
generates the chart's schema, values, ConfigMap mapping and checks, and the environment table of
docs/interfaces.md, from these classes (``make chart-docs``; the tests fail when a generated file is stale).

Database connection details are not here: libpq reads PGHOST, PGPORT, PGDATABASE, ... itself.
Every invalid value raises ConfigError with ONE line naming the variable and what is allowed, so a bad
deployment fails at start instead of at the first request.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict


class ConfigError(RuntimeError):
    """An environment variable holds an invalid value. One line, printed without a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"invalid configuration: {message}")


def setting(
    default: Any,
    *,
    env: str,
    doc: str,
    chart: str | None = None,
    env_only: str | None = None,
    allowed: str | None = None,
    follows: str | None = None,
    because: str | None = None,
    **bounds: Any,
) -> Any:
    """One setting's declaration: a pydantic Field.

    env       the environment variable (the field's validation alias: what pydantic-settings reads)
    doc       one line: what it does (units included)
    chart     its key in the service's chart block (``<service>.<chart_block>.<chart>``), or
    env_only  why it is not a chart value (exactly one of the two)
    allowed   what a valid value looks like, for settings whose type has no bounds (e.g. HOST:PORT)
    follows   another field of the block: unset (None) means that field's value, and smaller is refused
    because   why smaller than ``follows`` is refused (said in the service's error and the chart's)
    bounds    pydantic's constraints: ge, le (the chart's minimum and maximum)
    """
    if (chart is None) == (env_only is None):
        raise TypeError(f"{env}: declare chart= (its chart key) or env_only= (why it is not one), not both")
    if (follows is None) != (because is None):
        raise TypeError(f"{env}: follows= needs because= (the reason a smaller value is refused)")
    extra = {"chart": chart, "env_only": env_only, "allowed": allowed, "follows": follows, "because": because}
    return Field(
        default,
        validation_alias=env,
        description=doc,
        json_schema_extra={k: v for k, v in extra.items() if v is not None},
        **bounds,
    )


@dataclass(frozen=True)
class Declared:
    """What one field declares, read back for messages and for the generator."""

    name: str  # the attribute
    env: str
    doc: str
    default: Any
    chart: str | None
    env_only: str | None
    follows: str | None
    because: str | None
    kind: str  # "integer", "number", "enum" or "string"
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] = ()
    shape: str | None = None  # `allowed=` of the declaration
    nullable: bool = False  # None (unset) is a value: the default, or what `follows` names

    def allowed(self) -> str:
        """What a valid value is, as the error message says it: 'an integer between 1 and 100'."""
        if self.kind == "enum":
            return f"one of {', '.join(self.enum)}"
        if self.kind in ("integer", "number"):
            article = "an integer" if self.kind == "integer" else "a number"
            if self.maximum is None:
                return f"{article} of at least {number(self.minimum)}"
            return f"{article} between {number(self.minimum)} and {number(self.maximum)}"
        return self.shape or "a string"

    def range_text(self) -> str:
        """The same, short, for tables: '1 to 100', 'at least 0', 'DEBUG, INFO, WARNING or ERROR'."""
        if self.kind == "enum":
            return f"{', '.join(self.enum[:-1])} or {self.enum[-1]}"
        if self.kind in ("integer", "number"):
            if self.maximum is None:
                return f"at least {number(self.minimum)}"
            return f"{number(self.minimum)} to {number(self.maximum)}"
        return self.shape or "any string"


def number(value: float) -> str:
    """A bound as people write it: 67108864, 0.05, 60 (never 6.71089e+07 or 60.0)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _declared_from(name: str, field: Any, schema: dict[str, Any]) -> Declared:
    extra = field.json_schema_extra or {}
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    if len(options) != 1:
        raise TypeError(f"{field.validation_alias}: one type (or that type and None) per setting")
    (value,) = options
    kind = "enum" if "enum" in value else value.get("type", "string")
    if kind in ("integer", "number") and "minimum" not in value:
        raise TypeError(f"{field.validation_alias}: a numeric setting needs ge= (its minimum)")
    if "exclusiveMinimum" in value or "exclusiveMaximum" in value:
        raise TypeError(f"{field.validation_alias}: use ge=/le=, whose bounds are values one can set")
    return Declared(
        name=name,
        env=field.validation_alias,
        doc=field.description,
        default=field.default,
        chart=extra.get("chart"),
        env_only=extra.get("env_only"),
        follows=extra.get("follows"),
        because=extra.get("because"),
        kind=kind,
        minimum=value.get("minimum"),
        maximum=value.get("maximum"),
        enum=tuple(value.get("enum", ())),
        shape=extra.get("allowed"),
        nullable=len(schema.get("anyOf", [])) == 2,
    )


# The mapping from_env() reads; None: os.environ. A context variable, so that concurrent callers each
# parse their own mapping while pydantic-settings builds its sources from the class alone.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("atlas_settings_environ", default=None)


class _EnvironSource(EnvSettingsSource):
    """pydantic-settings' environment source, over the mapping given to from_env (else os.environ).
    Names match exactly (Linux variables are case-sensitive); an empty or blank value means unset."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        return {k: v for k, v in (os.environ if environ is None else environ).items() if v.strip()}


class SettingsBlock(BaseSettings):
    """One block of settings; subclasses set ``chart_block`` and declare their fields with setting()."""

    model_config = SettingsConfigDict(case_sensitive=True, frozen=True, extra="ignore", allow_inf_nan=False)
    chart_block: ClassVar[str]

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings, _EnvironSource(settings_cls))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """The block from ``env`` (default os.environ); ConfigError with one line naming what is wrong."""
        token = _ENVIRON.set(env)
        try:
            return cls()
        except ValidationError as exc:
            raise ConfigError(describe(cls, exc, os.environ if env is None else env)) from None
        finally:
            _ENVIRON.reset(token)

    @classmethod
    def declared(cls) -> tuple[Declared, ...]:
        """Every field's declaration, in declaration order."""
        return _declared(cls)

    @model_validator(mode="after")
    def _linked_defaults(self) -> Self:
        """A field that ``follows`` another: unset means its value, and smaller is refused."""
        fields = {d.name: d for d in self.declared()}
        for own in fields.values():
            if own.follows is None:
                continue
            floor, value = getattr(self, own.follows), getattr(self, own.name)
            if value is None:
                object.__setattr__(self, own.name, floor)  # frozen: set once, while validating
            elif value < floor:
                other = fields[own.follows].env
                raise ValueError(
                    f"{own.env} ({value}) must be at least {other} ({floor}): {own.because}; "
                    f"leave {own.env} unset to follow {other}"
                )
        return self


@functools.cache
def _declared(cls: type[SettingsBlock]) -> tuple[Declared, ...]:
    properties = cls.model_json_schema(mode="validation")["properties"]
    return tuple(_declared_from(name, f, properties[f.validation_alias]) for name, f in cls.model_fields.items())


def describe(cls: type[SettingsBlock], exc: ValidationError, env: Mapping[str, str]) -> str:
    """pydantic's multi-line error text as one line: each bad variable, what is allowed, what it got."""
    by_env = {d.env: d for d in cls.declared()}
    parts = []
    for error in exc.errors(include_url=False):
        name = error["loc"][0] if error["loc"] else None
        if name in by_env:
            raw = env.get(name, error.get("input"))
            parts.append(f"{name} must be {by_env[name].allowed()}, got {raw!r}")
        else:  # a rule across settings: its message names them
            parts.append(error["msg"].removeprefix("Value error, "))
    return "; ".join(parts)


# -- value shapes ---------------------------------------------------------------------------------


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _host_port(value: str) -> str:
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("not HOST:PORT")
    return value.strip()


def _base_url(value: Any) -> str | None:
    """An optional http(s) base URL, returned without a trailing slash; unset or blank -> None."""
    if value is None or not value.strip():
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("not an http(s) base URL")
    return value.strip().rstrip("/")


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _word(value: Any) -> Any:
    """A non-empty string without whitespace (a token's audience)."""
    if isinstance(value, str):
        value = value.strip()
        if not value or any(c.isspace() for c in value):
            raise ValueError("not one word")
    return value


LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)]
AccessLog = Annotated[Literal["all", "no-probes"], BeforeValidator(_lower)]
HostPort = Annotated[str, BeforeValidator(_host_port)]
BaseUrl = Annotated[str | None, BeforeValidator(_base_url)]
Word = Annotated[str, BeforeValidator(_word)]

# -- the `config` block every service has --------------------------------------------------------

POOL_BELOW_THREADS = (
    "each thread holds a connection while it serves a request, so with fewer connections than "
    "threads, threads wait for one and then answer 503"
)


class Settings(SettingsBlock):
    """What the shared app factory, the pool, `migrate` and the server read: chart block ``config``."""

    chart_block: ClassVar[str] = "config"

    log_level: LogLevel = setting("INFO", env="ATLAS_LOG_LEVEL", chart="logLevel", doc="log level (case-insensitive)")
    access_log: AccessLog = setting(
        "all",
        env="ATLAS_ACCESS_LOG",
        chart="accessLog",
        doc="one line per request: all, or no-probes (not for /livez, /readyz, /metrics)",
    )
    pool_size: int | None = setting(
        None,
        env="ATLAS_DB_POOL_SIZE",
        chart="poolSize",
        doc="database connections per worker",
        ge=1,
        le=100,
        follows="threads",
        because=POOL_BELOW_THREADS,
    )
    workers: int = setting(2, env="ATLAS_WORKERS", chart="workers", doc="worker processes", ge=1, le=32)
    threads: int = setting(
        4, env="ATLAS_THREADS", chart="threads", doc="requests served at once per worker (threads)", ge=1, le=64
    )
    # granian's own bounds for its kill timeout (1 to 1800); it has no "kill at once".
    graceful_timeout: int = setting(
        20,
        env="ATLAS_GRACEFUL_TIMEOUT",
        chart="gracefulTimeout",
        doc="seconds to finish in-flight requests after SIGTERM",
        ge=1,
        le=1800,
    )
    # Recycling: a leak (a library's cache, fragmentation) is cured by a fresh worker, started before the
    # old one stops. granian checks a lifetime at least a minute long, and memory every 30 s.
    worker_lifetime: int | None = setting(
        None,
        env="ATLAS_WORKER_LIFETIME",
        chart="workerLifetime",
        doc="seconds after which a worker is replaced (a new one first); unset: never",
        ge=60,
        le=31_536_000,
    )
    worker_max_rss: int | None = setting(
        None,
        env="ATLAS_WORKER_MAX_RSS",
        chart="workerMaxRss",
        doc="resident MiB past which a worker is replaced (a new one first); unset: never",
        ge=1,
        le=65536,
    )
    connect_timeout: int = setting(
        3,
        env="ATLAS_DB_CONNECT_TIMEOUT",
        chart="dbConnectTimeout",
        doc="seconds to open a database connection, or to wait for a pooled one",
        ge=1,
        le=60,
    )
    # Long enough for a first pull of the PostgreSQL image, short of helm's 600 s; 0: one attempt.
    db_wait_seconds: int = setting(
        120,
        env="ATLAS_DB_WAIT_SECONDS",
        chart="dbWaitSeconds",
        doc="`migrate` only: seconds to retry an unreachable database, 2 s apart (0: one attempt)",
        ge=0,
        le=3600,
    )
    # Below 100 ms a busy but healthy database cancels the probes' own queries: readiness would flap.
    statement_timeout_ms: int = setting(
        5000,
        env="ATLAS_DB_STATEMENT_TIMEOUT_MS",
        chart="dbStatementTimeoutMs",
        doc="per-statement timeout, milliseconds",
        ge=100,
        le=3_600_000,
    )
    max_body_bytes: int = setting(
        65536,
        env="ATLAS_MAX_BODY_BYTES",
        chart="maxBodyBytes",
        doc="larger request bodies get 413",
        ge=1,
        le=64 * 1024 * 1024,
    )
    bind: HostPort = setting(
        "0.0.0.0:8080",
        env="ATLAS_BIND",
        env_only="the chart sets it to 0.0.0.0 and the container port",
        allowed="HOST:PORT such as 0.0.0.0:8080",
        doc="listen address",
    )
    metrics_dir: str = setting(
        "/tmp/atlas-metrics",  # noqa: S108 - /tmp is the one writable path
        env="PROMETHEUS_MULTIPROC_DIR",
        env_only="the default suits the image: /tmp is its one writable path",
        doc="where the workers share their metrics (read before prometheus_client is imported)",
    )


# -- the `authentication` block every service lists: bearer tokens (atlas_common.bearer) -------------


class AuthSettings(SettingsBlock):
    """Who issues the access tokens and for whom: read by every service (users and projects check tokens,
    auth issues them). All environment only: the chart wires them from its release-wide `authentication`
    values (one issuer, audience and key URL for every service), so the block has no per-service chart key."""

    chart_block: ClassVar[str] = "authentication"

    issuer: BaseUrl = setting(
        None,
        env="ATLAS_AUTH_ISSUER",
        env_only="the chart sets it from authentication.issuer: on the provider, and wherever tokens are required",
        allowed="an http(s) URL such as http://atlas.local",
        doc="the tokens' issuer (iss) and the base of the token URL; unset: tokens are not checked (auth needs it)",
    )
    audience: Word = setting(
        "atlas",
        env="ATLAS_AUTH_AUDIENCE",
        env_only="the chart sets it from authentication.audience, with ATLAS_AUTH_ISSUER",
        allowed="one word such as atlas",
        doc="the audience (aud) tokens are issued for and checked against",
    )
    jwks_url: BaseUrl = setting(
        None,
        env="ATLAS_AUTH_JWKS_URL",
        env_only="the chart sets it to the provider's keys inside the cluster (or authentication.jwksUri)",
        allowed="an http(s) URL such as http://auth/.well-known/jwks.json",
        doc="where the token signing keys are fetched; unset: ATLAS_AUTH_ISSUER + /.well-known/jwks.json",
    )

    @property
    def enabled(self) -> bool:
        """Tokens are required on every /api/v1 call."""
        return self.issuer is not None

    @property
    def keys_url(self) -> str | None:
        if self.issuer is None:
            return None
        return self.jwks_url or f"{self.issuer}/.well-known/jwks.json"

    @property
    def token_url(self) -> str | None:
        return None if self.issuer is None else f"{self.issuer}/oauth/token"
