"""One error shape for every 4xx/5xx: ``{"error": {"code": ..., "message": ...}}``, never HTML or a traceback."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from . import current
from .db import DB_UNAVAILABLE, PoolTimeout
from .schema import SCHEMA_ERRORS, reason

log = logging.getLogger("atlas.errors")


class ApiError(Exception):
    """Raised by views for an expected failure; becomes a JSON error response."""

    def __init__(
        self, status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers or {}  # e.g. WWW-Authenticate on a 401


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return Response(json.dumps({"error": body}), status=status, mimetype="application/json", headers=headers)


def _http_code(exc: HTTPException) -> str:
    """'Request Entity Too Large' -> 'request_entity_too_large'."""
    return re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        response = error_response(exc.code or 500, _http_code(exc), exc.description or exc.name)
        # Keep what werkzeug adds for the client's sake, e.g. Allow on 405.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(PoolTimeout)
    def _pool_timeout(exc: PoolTimeout) -> Response:
        log.warning("database pool exhausted: %s", exc)
        return error_response(503, "database_busy", str(exc))

    for exc_type in DB_UNAVAILABLE:
        app.register_error_handler(exc_type, _database_unavailable)
    for exc_type in SCHEMA_ERRORS:
        app.register_error_handler(exc_type, _schema_not_current)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal server error")


def _database_unavailable(exc: Exception) -> Response:
    # The full libpq message stays in the log; clients learn only that the database is away.
    log.warning("database unavailable: %s", str(exc).strip())
    return error_response(503, "database_unavailable", "the database is not reachable; retry later")


def _schema_not_current(exc: Exception) -> Response:
    # The database lost its tables (or is behind this image): restore them now, in this request, unless
    # this worker is at it already; the client retries, as after any 503.
    log.warning("database schema not current, restoring it: %s", reason(exc))
    current.schema().heal()
    return error_response(503, "schema_not_current", "the database schema is being restored; retry later")
