"""Direct database access for the suites' own checks (never through the service under test)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg2

from evidence.net import require_loopback


@contextlib.contextmanager
def connection(libpq_env: dict[str, str]) -> Iterator:
    """An autocommit connection from a libpq env dict (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD)."""
    require_loopback(libpq_env["PGHOST"])
    conn = psycopg2.connect(
        host=libpq_env["PGHOST"], port=libpq_env["PGPORT"], dbname=libpq_env["PGDATABASE"],
        user=libpq_env["PGUSER"], password=libpq_env["PGPASSWORD"], connect_timeout=5,
    )  # fmt: skip
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def sessions_opened(libpq_env: dict[str, str]) -> int:
    """How many sessions (connections) the database has ever seen: PostgreSQL 14+'s pg_stat_database.sessions.

    The difference across a run is the number of connections the service opened during it, which is
    how the benchmark shows whether a connection pool really keeps its connections.
    """
    with connection(libpq_env) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cur.fetchone()[0])
