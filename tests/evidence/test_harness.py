"""The evidence suites' own measuring instruments, checked against real tools and a real PostgreSQL.

`make bench`, `make faults` and `make fuzz` are only as true as these: wrk's and pgbench's figures read
correctly, connections counted, lost writes detected, traffic kept on loopback.
"""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evidence import db, pgbench, pooltrap, wrk
from evidence.faults import lost_writes
from evidence.load import Outcome
from evidence.net import require_loopback


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects

    def do_GET(self) -> None:
        status = 200 if self.path == "/ok" else 404
        if self.path.startswith("/needs-token"):
            status = 200 if self.headers.get("Authorization") == "Bearer t0ken" else 401
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed: scripts/install-tools.sh wrk")


@needs_wrk
def test_wrk_figures_are_read_and_error_statuses_counted(http_server: str) -> None:
    ok = wrk.run(http_server + "/ok", duration=1, threads=1, connections=2)
    assert ok.requests > 0 and ok.rps > 0
    assert ok.errors == 0
    assert 0 < ok.p50_ms <= ok.p99_ms <= ok.max_ms
    missing = wrk.run(http_server + "/missing", duration=1, threads=1, connections=2)
    assert missing.requests > 0
    assert missing.status_errors == missing.requests  # every 404 counted as an error


@needs_wrk
def test_wrk_sends_the_headers_asked_for(http_server: str) -> None:
    """The token the bench sends reaches the server, on plain GETs and on the get_ids workload."""
    bare = wrk.run(http_server + "/needs-token", duration=1, threads=1, connections=2)
    assert bare.requests > 0 and bare.status_errors == bare.requests
    token = {"Authorization": "Bearer t0ken"}
    sent = wrk.run(http_server + "/needs-token", duration=1, threads=1, connections=2, headers=token)
    assert sent.requests > 0 and sent.errors == 0
    ids = wrk.run(http_server + "/needs-", duration=1, threads=1, connections=2, workload="get_ids", ids=["token"],
                  headers=token)  # fmt: skip
    assert ids.requests > 0 and ids.errors == 0


@needs_wrk
def test_wrk_get_ids_workload_spreads_over_the_ids(http_server: str) -> None:
    # /o + k -> "/ok" for the id "k": a workload that builds paths from ids reaches the server as intended.
    result = wrk.run(http_server + "/o", duration=1, threads=1, connections=2, workload="get_ids", ids=["k"])
    assert result.requests > 0 and result.errors == 0


def test_pgbench_figures_are_read(database: dict[str, str]) -> None:
    pgbench.prepare(database)
    result = pgbench.run(database, "insert_row", clients=2, threads=1, duration=1)
    assert result.transactions > 0 and result.tps > 0 and result.failed == 0
    with db.connection(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM atlas_bench_insert")
        assert cur.fetchone()[0] == result.transactions


def test_session_counter_counts_the_connections_opened(database: dict[str, str]) -> None:
    with db.SessionCounter(database) as counter:
        before = counter.read()
        for _ in range(3):
            db.connect(database).close()
        assert counter.read() - before == 3


@pytest.mark.slow
def test_pool_trap_shows_connection_churn_only_below_minconn(database: dict[str, str]) -> None:
    trap = pooltrap.run(database, minconn=1, threads=4, seconds=1.5)
    kept = pooltrap.run(database, minconn=4, threads=4, seconds=1.5)
    assert kept.connections_opened <= 4
    assert trap.connections_opened > 2 * kept.connections_opened
    assert kept.qps > trap.qps


def _acked(ident: str, email: str) -> Outcome:
    return Outcome(started=0.0, elapsed=0.01, status=201, json=True, ident=ident, body={"email": email})


def test_lost_writes_counts_missing_and_altered_rows(database: dict[str, str]) -> None:
    with db.connection(database) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL)")
        cur.execute("INSERT INTO users VALUES (1, 'a@example.test'), (2, 'b@example.test')")
    acked = [_acked("1", "a@example.test"), _acked("2", "changed@example.test"), _acked("3", "c@example.test")]
    assert lost_writes(database, "users", "email", acked) == 2
    assert lost_writes(database, "users", "email", acked[:1]) == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "::1", "localhost"])
def test_loopback_hosts_are_allowed(host: str) -> None:
    require_loopback(host)


@pytest.mark.parametrize("host", ["10.0.0.1", "192.168.1.10", "8.8.8.8", "example.com", "", None])
def test_other_hosts_are_refused(host: str | None) -> None:
    with pytest.raises(ValueError, match="loopback"):
        require_loopback(host)
