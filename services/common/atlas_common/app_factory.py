"""Build a service's Flask app: settings, pool, schema, probes, errors, request id, metrics, access log, and
the bearer token check of its APIs (on when ATLAS_AUTH_ISSUER is set)."""

from __future__ import annotations

import logging
import logging.config
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, g, request

from . import bearer, errors, metrics, openapi, request_id
from .bearer import BearerCheck
from .config import AuthSettings, Settings
from .db import Pool
from .keys import LocalKeys, RemoteJwks
from .logging import PROBE_PATHS, dict_config, log_request
from .probes import probes
from .routing import Api, IdConverter, KeyConverter
from .schema import Schema


@dataclass
class Atlas:
    """What a service's views reach through ``current_app.extensions["atlas"]``."""

    name: str
    version: str
    settings: Settings
    pool: Pool
    schema: Schema
    apis: list[Api]
    auth: AuthSettings
    bearer: BearerCheck | None  # None: tokens are not checked
    _openapi: dict[str, Any] | None = field(default=None, repr=False)

    def openapi(self) -> dict[str, Any]:
        if self._openapi is None:  # built on first request, then served as is
            token_url = self.auth.token_url if self.bearer is not None else None
            self._openapi = openapi.build(f"Atlas {self.name} service", self.version, self.apis, token_url)
        return self._openapi


def create_app(
    name: str,
    version: str,
    apis: list[Api],
    env: Mapping[str, str] | None = None,
    token_keys: LocalKeys | None = None,
) -> Flask:
    """The env mapping defaults to os.environ; tests pass their own. Raises ConfigError on bad settings.
    ``token_keys``: the keys that verify tokens when they are checked, for the service that holds them (auth);
    the others fetch the published ones (ATLAS_AUTH_JWKS_URL), at the first token they check."""
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    auth = AuthSettings.from_env(env)
    _configure_logging(settings.log_level)

    app = Flask(name)
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["key"] = KeyConverter
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    # The pool opens no connection here: `serve` builds the app in its main process and forks the workers.
    pool = Pool(settings, application_name=name, observer=metrics.pool_observer(name))
    check = None
    if auth.enabled:
        keys = token_keys if token_keys is not None else RemoteJwks(auth.keys_url)
        check = BearerCheck(auth.issuer, auth.audience, keys)
    # The service's package holds its migrations: the schema it checks and restores is the one it ships.
    app.extensions["atlas"] = Atlas(name, version, settings, pool, Schema(name, settings), apis, auth, check)

    errors.register(app)
    app.register_blueprint(probes)
    for api in apis:
        app.register_blueprint(api.blueprint)

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        request_id.assign()

    log_probes = settings.access_log == "all"
    api_prefixes = tuple(api.prefix for api in apis)
    authentication = "required" if check is not None else "disabled"

    @app.after_request
    def _finish(response: Response) -> Response:
        seconds = time.perf_counter() - g.started
        rid = g.request_id
        served = request._get_current_object()  # the proxy resolved once: this runs on every request
        path, rule = served.path, served.url_rule
        headers = response.headers
        headers[request_id.HEADER] = rid
        if path.startswith(api_prefixes):  # every API response, errors (404, 405, 401...) included
            headers[bearer.HEADER] = authentication
        # The url rule, not the path: /api/v1/users/<int:user_id> is one series, not one per user.
        status = response.status_code
        metrics.observe_request(name, served.method, rule.rule if rule is not None else "unmatched", status, seconds)
        if log_probes or path not in PROBE_PATHS:
            log_request(served.method, path, status, round(seconds * 1000, 2), rid)
        return response

    return app


def _configure_logging(level: str) -> None:
    # Under `serve`, the server has installed the JSON handler already; standalone, do it here.
    if not logging.getLogger().handlers:
        logging.config.dictConfig(dict_config(level))
    logging.getLogger("atlas").setLevel(level)
