"""A database that comes back empty (the ephemeral profile's database pod restarted): /readyz says
so, the service restores its schema by itself, and no request ever gets a 500 in between."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass

import pytest
import requests

from tests.services.conftest import migrate
from tests.support.postgres import wait_until
from tests.support.processes import ServiceProcess

# -- /readyz against the schema, through the Flask test client -------------------------------------


def run_sql(postgres_server, db_env: dict[str, str], statement: str) -> None:
    conn = postgres_server.connect(db_env["PGDATABASE"])
    with conn.cursor() as cur:
        cur.execute(statement)
    conn.close()


def restore_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "atlas.schema" and r.levelno == logging.WARNING]


def test_readyz_is_503_while_a_shipped_migration_is_not_applied(users_app, users_db, postgres_server, caplog):
    client = users_app.test_client()
    assert client.get("/readyz").status_code == 200
    run_sql(postgres_server, users_db, "DELETE FROM schema_migrations WHERE version = 1")

    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["error"]["code"] == "schema_not_current"
    assert ready.json["error"]["details"] == {"state": "missing", "missing": ["0001_create_users"]}
    # The restore it started re-ran 0001 on the tables still there, failed, and rolled back.
    assert len(restore_warnings(caplog)) == 1
    assert "already exists" in restore_warnings(caplog)[0]

    # Within the back-off the next probe reports again but does not retry the failed restore.
    assert client.get("/readyz").status_code == 503
    assert len(restore_warnings(caplog)) == 1
    assert client.post("/api/v1/users", json={"email": "still@example.org", "name": "S"}).status_code == 201


def test_readyz_is_503_when_the_schema_is_behind_the_image(users_app, monkeypatch):
    schema = users_app.extensions["atlas"].schema
    monkeypatch.setitem(schema.shipped, 2, "0002_not_yet_applied")  # as if this image shipped a newer migration
    ready = users_app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.json["error"]["details"] == {"state": "behind", "missing": ["0002_not_yet_applied"]}
    assert "behind" in ready.json["error"]["message"]


def test_readyz_is_200_when_the_database_is_ahead_of_the_image(users_app, users_db, postgres_server):
    # A newer image has migrated already (rolling upgrade): this one's schema is all there.
    run_sql(
        postgres_server, users_db, "INSERT INTO schema_migrations (version, name, checksum) VALUES (2, 'newer', 'x')"
    )
    assert users_app.test_client().get("/readyz").json == {"status": "ready"}


def test_an_empty_database_is_restored_and_a_running_restore_is_not_waited_for(users_app, users_db, postgres_server):
    client = users_app.test_client()
    run_sql(postgres_server, users_db, "DROP TABLE users, schema_migrations")
    healing = users_app.extensions["atlas"].schema._healing

    assert healing.acquire(blocking=False)  # as if another thread of this worker were restoring
    try:
        api = client.post("/api/v1/users", json={"email": "a@example.org", "name": "A"})
        ready = client.get("/readyz")
    finally:
        healing.release()
    assert (api.status_code, api.json["error"]["code"]) == (503, "schema_not_current")
    assert (ready.status_code, ready.json["error"]["details"]["state"]) == (503, "missing")

    # Nobody restoring: this probe restores (and reports what it found), the next one is ready.
    assert client.get("/readyz").status_code == 503
    assert client.get("/readyz").status_code == 200
    assert client.post("/api/v1/users", json={"email": "a@example.org", "name": "A"}).status_code == 201


# -- the whole story with real gunicorn workers ----------------------------------------------------


@dataclass
class Call:
    started: float
    method: str
    status: int | None  # None: no HTTP answer at all
    body: object


def fresh(method: str, url: str, **kwargs) -> requests.Response:
    # A new connection per call, so that both gunicorn workers are asked, not one kept-alive socket.
    return requests.request(method, url, headers={"Connection": "close"}, timeout=10, **kwargs)


class Traffic(threading.Thread):
    """POST a new item then GET it back, over and over, recording every answer."""

    def __init__(self, server: ServiceProcess, api: str, new_item) -> None:
        super().__init__(daemon=True)
        self.server, self.api, self.new_item = server, api, new_item
        self.calls: list[Call] = []
        self.done = threading.Event()

    def _call(self, method: str, path: str, **kwargs) -> Call:
        started = time.monotonic()
        try:
            response = fresh(method, self.server.url(path), **kwargs)
            try:
                body = response.json()
            except ValueError:
                body = response.text
            call = Call(started, method, response.status_code, body)
        except requests.RequestException as exc:
            call = Call(started, method, None, repr(exc))
        self.calls.append(call)
        return call

    def run(self) -> None:
        i = 0
        while not self.done.is_set():
            i += 1
            created = self._call("POST", self.api, json=self.new_item(i))
            if created.status == 201:
                self._call("GET", f"{self.api}/{created.body['id']}")
            else:
                self._call("GET", self.api)
            time.sleep(0.01)


def since(traffic: list[Traffic], moment: float) -> list[Call]:
    """Every client's calls started after ``moment`` (a time.monotonic() value)."""
    return [c for client in traffic for c in list(client.calls) if c.started > moment]


SERVICES = {
    "users": ("/api/v1/users", lambda i: {"email": f"u{i}-{uuid.uuid4().hex[:6]}@example.org", "name": f"U{i}"}),
    "projects": ("/api/v1/projects", lambda i: {"name": f"P{i}", "owner_id": 1}),  # owner check off
}


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_restores_a_database_that_came_back_empty(service, postgres_server, capsys):
    api, new_item = SERVICES[service]
    name = f"heal_{service}_{uuid.uuid4().hex[:8]}"
    env = postgres_server.create_database(name)
    migrate(env, service)
    admin = postgres_server.connect()
    try:
        with ServiceProcess(service, env=env, workers=2, threads=2) as server:
            server.wait_for("/readyz")
            wait_until(lambda: len(server.worker_pids()) == 2, timeout=15)  # the master forks them one by one
            pids = (server.pid, server.worker_pids())
            # Two clients, so that requests also meet a restore already running in a worker.
            traffic = [Traffic(server, api, new_item) for _ in range(2)]
            for client in traffic:
                client.start()
            try:
                wait_until(lambda: any(c.status == 201 for c in since(traffic, 0)), timeout=15)

                with admin.cursor() as cur:  # the database pod restarts: the data is gone
                    cur.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                dropped = time.monotonic()
                wait_until(lambda: any(c.status == 503 for c in since(traffic, dropped)), timeout=15)
                with admin.cursor() as cur:  # ...and comes back empty
                    cur.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
                recreated = time.monotonic()

                # Only the traffic reaches the new database first (no probe restores it before a request does).
                wait_until(lambda: any(c.status is not None for c in since(traffic, recreated)), timeout=15)
                wait_until(lambda: fresh("GET", server.url("/readyz")).status_code == 200, timeout=60)
                ready_after = time.monotonic() - recreated
                created = fresh("POST", server.url(api), json=new_item(0))
                assert created.status_code == 201, created.text
                read_back = fresh("GET", server.url(f"{api}/{created.json()['id']}"))
                assert (read_back.status_code, read_back.json()) == (200, created.json())
                round_trip_after = time.monotonic() - recreated
                # Every worker is ready again, not just the one that answered first.
                readiness = [fresh("GET", server.url("/readyz")).status_code for _ in range(10)]
                recovered = time.monotonic()
                wait_until(lambda: len(since(traffic, recovered)) >= 20, timeout=30)
            finally:
                for client in traffic:
                    client.done.set()
                for client in traffic:
                    client.join(timeout=15)
            pids_after = (server.pid, server.worker_pids())
            logs = server.logs()
    finally:
        admin.close()
        postgres_server.drop_database(name)

    calls = since(traffic, 0)
    unavailable = [c for c in calls if c.status == 503]
    codes = [c.body["error"]["code"] for c in unavailable if isinstance(c.body, dict)]
    first_good = min(c.started for c in since(traffic, recreated) if c.status in (200, 201)) - recreated
    warnings = [
        line
        for line in logs.splitlines()
        if line.startswith("{") and json.loads(line)["message"].startswith("database schema not current")
    ]
    with capsys.disabled():
        print(
            f"\n-- {service}: {len(calls)} requests, 503s: {len(unavailable)} "
            f"({', '.join(f'{code} x{codes.count(code)}' for code in sorted(set(codes)))}); "
            f"first good answer {first_good:.3f}s after the empty database was back, /readyz 200 after "
            f"{ready_after:.3f}s, POST+GET round trip after {round_trip_after:.3f}s"
        )

    assert {c.status for c in calls} <= {200, 201, 503}, [c for c in calls if c.status not in (200, 201, 503)]
    assert unavailable
    assert len(codes) == len(unavailable)  # every 503 is a JSON error body
    assert set(codes) <= {"database_unavailable", "schema_not_current"}
    assert "schema_not_current" in codes  # the empty database was met by a request, not by a probe
    assert len(warnings) == codes.count("schema_not_current")  # one warning line per such request
    assert not any("INSERT" in line or "SELECT" in line for line in warnings)  # no statement text, no request data
    assert "schema restored: applied 0001_create_" in logs
    assert "Traceback" not in logs and "unhandled error" not in logs
    assert round_trip_after < 60
    assert readiness == [200] * 10
    assert all(c.status in (200, 201) for c in since(traffic, recovered))
    assert pids_after == pids  # no worker and no master restarted
