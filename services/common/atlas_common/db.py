"""A small thread-safe PostgreSQL connection pool that keeps its connections and heals itself.

Why not psycopg2.pool: it closes every connection returned above ``minconn``, raises at once when
exhausted instead of waiting, and hands out dead connections after a database restart. This pool
opens connections on demand up to ``size``, keeps them, waits (bounded) for a free one, and drops
connections the server has closed, so the worker recovers from an outage without a restart.

Connections are in autocommit mode: every statement the services run is atomic on its own, and a
probe's ``SELECT 1`` then costs one round trip instead of three (BEGIN/SELECT/COMMIT).
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions

from .config import Settings

# The errors that mean "the database cannot be reached or the connection is gone".
DB_UNAVAILABLE = (psycopg2.OperationalError, psycopg2.InterfaceError)


class PoolTimeout(Exception):
    """Every connection stayed busy for the whole wait."""


PoolObserver = Callable[[int, int, int], None]  # (size, in_use, idle)


class Pool:
    def __init__(self, settings: Settings, application_name: str, observer: PoolObserver | None = None) -> None:
        self.size = settings.pool_size
        # Waiting for a busy connection is bounded like opening one: past that, a 503 beats a hung request.
        self._wait = float(settings.connect_timeout)
        # Host, port, database, user and password come from the libpq environment (PGHOST, ...).
        self._connect_kwargs = {
            "connect_timeout": settings.connect_timeout,
            "application_name": application_name,
            "options": f"-c statement_timeout={settings.statement_timeout_ms}",
            # Notice a silently vanished server (no FIN) within about a minute instead of hours.
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
        self._observer = observer
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.size)
        self._idle: list[psycopg2.extensions.connection] = []
        self._in_use = 0
        self._pid = os.getpid()

    # -- public API ------------------------------------------------------------------------------
    @contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        """Borrow a connection; raises PoolTimeout or one of DB_UNAVAILABLE when there is none."""
        self._check_fork()
        if not self._slots.acquire(timeout=self._wait):
            raise PoolTimeout(f"all {self.size} database connections stayed busy for {self._wait:g}s")
        conn = None
        try:
            with self._lock:
                self._in_use += 1
            self._report()
            conn = self._take_idle() or self._connect()
            yield conn
        finally:
            self._give_back(conn)
            self._slots.release()
            self._report()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"size": self.size, "in_use": self._in_use, "idle": len(self._idle)}

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        self._report()

    # -- internals -------------------------------------------------------------------------------
    def _connect(self) -> psycopg2.extensions.connection:
        conn = psycopg2.connect(**self._connect_kwargs)
        conn.autocommit = True
        return conn

    def _take_idle(self) -> psycopg2.extensions.connection | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()  # LIFO: the warmest connection first
            if self._alive(conn):
                return conn
            # The server closed this one (restart, failover): its idle siblings share its fate.
            conn.close()
            self._discard_idle()

    @staticmethod
    def _alive(conn: psycopg2.extensions.connection) -> bool:
        """Cheap check without a round trip. An idle autocommit connection is never sent anything, so a
        readable socket means the server said goodbye (shutdown notice or EOF) while it sat in the pool."""
        if conn.closed:
            return False
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        return not poller.poll(0)

    def _give_back(self, conn: psycopg2.extensions.connection | None) -> None:
        keep = conn is not None and not conn.closed
        if keep and not conn.autocommit:
            try:  # a caller opened a transaction and left it: undo it, restore autocommit
                conn.rollback()
                conn.autocommit = True
            except DB_UNAVAILABLE:
                keep = False
        with self._lock:
            self._in_use -= 1
            if keep:
                self._idle.append(conn)
        if conn is not None and not keep:
            conn.close()
            self._discard_idle()

    def _discard_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _check_fork(self) -> None:
        # A libpq socket shared by two processes corrupts both sessions: a forked child starts empty.
        if self._pid != os.getpid():
            with self._lock:
                self._pid, self._idle, self._in_use = os.getpid(), [], 0
                self._slots = threading.BoundedSemaphore(self.size)

    def _report(self) -> None:
        if self._observer is not None:
            # Unlocked reads: a gauge is a sample, and the next borrow or return reports again.
            self._observer(self.size, self._in_use, len(self._idle))
