"""Build a service's Flask app: settings, pool, schema, probes, errors, request id, metrics and access log."""

from __future__ import annotations

import logging
import logging.config
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, g, request

from . import errors, metrics, openapi, request_id
from .config import Settings
from .db import Pool
from .logging import PROBE_PATHS, dict_config, log_request
from .probes import probes
from .routing import Api, IdConverter
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
    _openapi: dict[str, Any] | None = field(default=None, repr=False)

    def openapi(self) -> dict[str, Any]:
        if self._openapi is None:  # built on first request, then served as is
            self._openapi = openapi.build(f"Atlas {self.name} service", self.version, self.apis)
        return self._openapi


def create_app(name: str, version: str, apis: list[Api], env: Mapping[str, str] | None = None) -> Flask:
    """The env mapping defaults to os.environ; tests pass their own. Raises ConfigError on bad settings."""
    settings = Settings.from_env(os.environ if env is None else env)
    _configure_logging(settings.log_level)

    app = Flask(name)
    app.url_map.converters["id"] = IdConverter
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    # The pool opens no connection here: `serve` builds the app in its main process and forks the workers.
    pool = Pool(settings, application_name=name, observer=metrics.pool_observer(name))
    # The service's package holds its migrations: the schema it checks and restores is the one it ships.
    app.extensions["atlas"] = Atlas(name, version, settings, pool, Schema(name, settings), apis)

    errors.register(app)
    app.register_blueprint(probes)
    for api in apis:
        app.register_blueprint(api.blueprint)

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        request_id.assign()

    log_probes = settings.access_log == "all"

    @app.after_request
    def _finish(response: Response) -> Response:
        seconds = time.perf_counter() - g.started
        response.headers[request_id.HEADER] = g.request_id
        # The url rule, not the path: /api/v1/users/<int:user_id> is one series, not one per user.
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.observe_request(name, request.method, endpoint, response.status_code, seconds)
        if log_probes or request.path not in PROBE_PATHS:
            log_request(request.method, request.path, response.status_code, round(seconds * 1000, 2), g.request_id)
        return response

    return app


def _configure_logging(level: str) -> None:
    # Under `serve`, the server has installed the JSON handler already; standalone, do it here.
    if not logging.getLogger().handlers:
        logging.config.dictConfig(dict_config(level))
    logging.getLogger("atlas").setLevel(level)
