"""Probe and introspection endpoints: /livez, /readyz, /db-status, /metrics, /openapi.json."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify

from . import metrics
from .current import pool as _pool
from .current import schema as _schema
from .db import DB_UNAVAILABLE, PoolTimeout
from .errors import error_response

probes = Blueprint("probes", __name__)


@probes.get("/livez")
def livez() -> Response:
    # The process answers: that is all liveness means. Never the database: an outage must not
    # make Kubernetes restart every pod.
    return jsonify(status="alive")


@probes.get("/readyz")
def readyz() -> Response:
    schema = _schema()
    try:
        with _pool().connection() as conn:
            status = schema.status(conn)  # also proves the database answers: one round trip
    except (*DB_UNAVAILABLE, PoolTimeout):
        return error_response(503, "database_unavailable", "the database is not reachable")
    if not status.current:
        # Restore outside the pooled connection; this answer reports what was found, the next probe
        # sees the result.
        schema.heal()
        return error_response(
            503,
            "schema_not_current",
            f"the database schema is {status.state}: {', '.join(status.missing)} not applied; restoring it",
            {"state": status.state, "missing": list(status.missing)},
        )
    return jsonify(status="ready")


@probes.get("/db-status")
def db_status() -> Response:
    pool = _pool()
    try:
        with pool.connection() as conn, conn.cursor() as cur:
            start = time.perf_counter()
            cur.execute("SELECT 1")
            latency_ms = (time.perf_counter() - start) * 1000
            # Reported by the server at login: no extra round trip.
            version = conn.get_parameter_status("server_version")
    except (*DB_UNAVAILABLE, PoolTimeout) as exc:
        body = {"connected": False, "error": type(exc).__name__, "pool": pool.stats()}
        return Response(current_app.json.dumps(body), status=503, mimetype="application/json")
    return jsonify(connected=True, server_version=version, latency_ms=round(latency_ms, 3), pool=pool.stats())


@probes.get("/metrics")
def prometheus_metrics() -> Response:
    payload, content_type = metrics.render()
    return Response(payload, content_type=content_type)


@probes.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(current_app.extensions["atlas"].openapi())
