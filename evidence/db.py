"""Direct database access for the suites' own checks (never through the service under test)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import psycopg2

from evidence.net import require_loopback


def connect(libpq_env: dict[str, str]):
    """An autocommit connection from a libpq env dict (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD)."""
    require_loopback(libpq_env["PGHOST"])
    conn = psycopg2.connect(
        host=libpq_env["PGHOST"], port=libpq_env["PGPORT"], dbname=libpq_env["PGDATABASE"],
        user=libpq_env["PGUSER"], password=libpq_env["PGPASSWORD"], connect_timeout=5,
    )  # fmt: skip
    conn.autocommit = True
    return conn


@contextlib.contextmanager
def connection(libpq_env: dict[str, str]) -> Iterator:
    conn = connect(libpq_env)
    try:
        yield conn
    finally:
        conn.close()


class SessionCounter(contextlib.AbstractContextManager):
    """Counts the sessions (connections) a database sees, from PostgreSQL's pg_stat_database.sessions.

    The difference across a run is the number of connections the clients opened during it: how the
    benchmark shows whether a pool keeps its connections. It reads through one connection kept open
    for its whole life, so its own reading adds nothing to the count.
    """

    def __init__(self, libpq_env: dict[str, str]) -> None:
        self._env = libpq_env

    def __enter__(self) -> SessionCounter:
        self._conn = connect(self._env)
        return self

    def __exit__(self, *exc) -> None:
        self._conn.close()

    def read(self) -> int:
        # Backends flush their statistics at most once a second: give them that second.
        time.sleep(1.1)
        with self._conn.cursor() as cur:
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            return int(cur.fetchone()[0])
