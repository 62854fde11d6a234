"""atlas_common.db.Pool against a real PostgreSQL server."""

from __future__ import annotations

import threading
import time

import psycopg2
import psycopg2.errors
import pytest
from atlas_common.config import Settings
from atlas_common.db import Pool, PoolTimeout


@pytest.fixture
def make_pool(database, monkeypatch):
    for key, value in database.items():
        monkeypatch.setenv(key, value)
    pools = []

    def make(**env: str) -> Pool:
        # A pool smaller than the threads is refused (atlas_common.config): one thread per connection here.
        env.setdefault("ATLAS_THREADS", env.get("ATLAS_DB_POOL_SIZE", "4"))
        pools.append(Pool(Settings.from_env(env), application_name="pool-test"))
        return pools[-1]

    yield make
    for pool in pools:
        pool.close()


def backend_pid(pool: Pool) -> int:
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def test_opens_lazily_and_keeps_every_connection(make_pool):
    pool = make_pool(ATLAS_DB_POOL_SIZE="3")
    assert pool.stats() == {"size": 3, "in_use": 0, "idle": 0}  # nothing opened before it is needed

    barrier = threading.Barrier(3)
    pids: list[int] = []

    def borrow() -> None:
        with pool.connection() as conn, conn.cursor() as cur:
            barrier.wait(timeout=5)  # all three are borrowed at once
            cur.execute("SELECT pg_backend_pid()")
            pids.append(cur.fetchone()[0])

    threads = [threading.Thread(target=borrow) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(pids)) == 3
    # psycopg2's own pool would have closed those above minconn; this one keeps all three.
    assert pool.stats() == {"size": 3, "in_use": 0, "idle": 3}
    assert {backend_pid(pool) for _ in range(10)} <= set(pids)


def test_waits_for_a_free_connection_then_gives_up_clearly(make_pool):
    pool = make_pool(ATLAS_DB_POOL_SIZE="1", ATLAS_DB_CONNECT_TIMEOUT="1")
    release = threading.Event()

    def hold() -> None:
        with pool.connection():
            release.wait(timeout=10)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    start = time.monotonic()
    with pytest.raises(PoolTimeout, match="all 1 database connections stayed busy"), pool.connection():
        pass
    assert 0.9 < time.monotonic() - start < 3

    threading.Timer(0.2, release.set).start()
    with pool.connection() as conn, conn.cursor() as cur:  # handed over once the holder is done
        cur.execute("SELECT 1")
    holder.join()
    assert pool.stats()["in_use"] == 0


def test_connections_killed_by_the_server_are_replaced_without_an_error(make_pool, postgres_server, database):
    pool = make_pool(ATLAS_DB_POOL_SIZE="2")
    before = backend_pid(pool)
    admin = postgres_server.connect()
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database["PGDATABASE"],)
        )
    admin.close()
    time.sleep(0.1)  # the termination notice reaches the idle client socket
    after = backend_pid(pool)  # no OperationalError: the dead idle connection was noticed and dropped
    assert after != before
    assert pool.stats() == {"size": 2, "in_use": 0, "idle": 1}


def test_statement_timeout_applies_and_the_connection_survives_it(make_pool):
    pool = make_pool(ATLAS_DB_POOL_SIZE="1", ATLAS_DB_STATEMENT_TIMEOUT_MS="100")
    before = backend_pid(pool)
    with pytest.raises(psycopg2.errors.QueryCanceled), pool.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_sleep(2)")
    assert backend_pid(pool) == before  # a cancelled statement does not cost the connection


def test_a_transaction_left_open_is_rolled_back_on_return(make_pool):
    pool = make_pool(ATLAS_DB_POOL_SIZE="1")
    with pool.connection() as conn, conn.cursor() as cur:
        conn.autocommit = False
        cur.execute("CREATE TABLE left_open (x int)")
    with pool.connection() as conn, conn.cursor() as cur:
        assert conn.autocommit is True
        cur.execute("SELECT to_regclass('left_open')")
        assert cur.fetchone() == (None,)
