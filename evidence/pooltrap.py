"""The ThreadedConnectionPool trap, measured directly (why atlas_common has its own pool).

psycopg2's ThreadedConnectionPool closes every connection handed back while more than ``minconn`` are
idle, so with minconn < threads the threads keep opening new connections. This runs ``threads`` threads
doing getconn / SELECT 1 / putconn against the real server, once with minconn=1 and once with
minconn = maxconn = threads, and counts the queries and the connections the database saw.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from psycopg2.pool import ThreadedConnectionPool

from evidence.db import SessionCounter
from evidence.net import require_loopback

THINK = 0.0005


@dataclass(frozen=True)
class TrapResult:
    minconn: int
    maxconn: int
    queries: int
    seconds: float
    connections_opened: int

    @property
    def qps(self) -> float:
        return self.queries / self.seconds


def run(libpq_env: dict[str, str], *, minconn: int, threads: int, seconds: float) -> TrapResult:
    require_loopback(libpq_env["PGHOST"])
    dsn = {
        "host": libpq_env["PGHOST"], "port": libpq_env["PGPORT"], "dbname": libpq_env["PGDATABASE"],
        "user": libpq_env["PGUSER"], "password": libpq_env["PGPASSWORD"],
    }  # fmt: skip
    counts = [0] * threads
    with SessionCounter(libpq_env) as sessions:
        before = sessions.read()
        pool = ThreadedConnectionPool(minconn, threads, **dsn)
        deadline = time.monotonic() + seconds

        def work(i: int) -> None:
            while time.monotonic() < deadline:
                conn = pool.getconn()
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT 1")
                        cur.fetchone()
                    conn.rollback()  # end the implicit transaction, as a request handler would
                finally:
                    pool.putconn(conn)
                counts[i] += 1
                time.sleep(THINK)

        start = time.monotonic()
        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(seconds + 30)
        elapsed = time.monotonic() - start
        pool.closeall()
        opened = sessions.read() - before
    return TrapResult(minconn, threads, sum(counts), elapsed, opened)
