"""Database outage with both services running under gunicorn: they stay up, say so, and recover alone.

This test stops and starts PostgreSQL, so it runs its own server, not the session's shared one.
"""

from __future__ import annotations

import time

import pytest
import requests

from tests.services.conftest import migrate
from tests.support.postgres import PostgresServer, wait_until
from tests.support.processes import ServiceProcess


@pytest.fixture
def own_postgres():
    with PostgresServer().running() as server:
        yield server


def fresh(url: str, method: str = "GET", **kwargs) -> requests.Response:
    # A new connection per call, so that every gunicorn worker gets asked, not one kept-alive socket.
    return requests.request(method, url, headers={"Connection": "close"}, timeout=10, **kwargs)


def observe(service: ServiceProcess, api: str, body: dict) -> dict[str, tuple[int, dict]]:
    calls = {
        "GET /livez": fresh(service.url("/livez")),
        "GET /readyz": fresh(service.url("/readyz")),
        "GET /db-status": fresh(service.url("/db-status")),
        f"GET {api}": fresh(service.url(api)),
        f"POST {api}": fresh(service.url(api), "POST", json=body),
    }
    return {name: (r.status_code, r.json()) for name, r in calls.items()}


def test_database_outage_and_recovery(own_postgres, capsys):
    users_env = own_postgres.create_database("users")
    projects_env = own_postgres.create_database("projects")
    migrate(users_env, "users")
    migrate(projects_env, "projects")

    with (
        ServiceProcess("users", env=users_env, workers=2, threads=2) as users,
        ServiceProcess(
            "projects", env={**projects_env, "USERS_SERVICE_URL": users.base_url}, workers=2, threads=2
        ) as projects,
    ):
        # Acknowledged writes before the outage.
        written_users = [
            fresh(users.url("/api/v1/users"), "POST", json={"email": f"w{i}@example.org", "name": f"W{i}"}).json()
            for i in range(10)
        ]
        written_projects = [
            fresh(projects.url("/api/v1/projects"), "POST", json={"name": f"P{i}", "owner_id": u["id"]}).json()
            for i, u in enumerate(written_users)
        ]
        assert all("id" in p for p in written_projects), written_projects
        pids = {s.service: (s.pid, s.worker_pids()) for s in (users, projects)}
        assert all(len(workers) == 2 for _, workers in pids.values())

        own_postgres.stop()  # fast shutdown: the server closes every client connection
        during = {
            "users": observe(users, "/api/v1/users", {"email": "late@example.org", "name": "Late"}),
            "projects": observe(projects, "/api/v1/projects", {"name": "Late", "owner_id": written_users[0]["id"]}),
        }

        own_postgres.start()
        restarted = time.monotonic()
        wait_until(lambda: all(fresh(s.url("/readyz")).status_code == 200 for s in (users, projects)), timeout=5)
        recovery = time.monotonic() - restarted
        # Every worker is ready again, not just the one that answered first.
        after_ready = [fresh(s.url("/readyz")).status_code for s in (users, projects) for _ in range(10)]

        read_back_users = [fresh(users.url(f"/api/v1/users/{u['id']}")) for u in written_users]
        read_back_projects = [fresh(projects.url(f"/api/v1/projects/{p['id']}")) for p in written_projects]
        new_write = fresh(users.url("/api/v1/users"), "POST", json={"email": "after@example.org", "name": "After"})
        pids_after = {s.service: (s.pid, s.worker_pids()) for s in (users, projects)}

    with capsys.disabled():
        print("\n-- database outage, with PostgreSQL stopped:")
        for service, calls in during.items():
            for name, (status, body) in calls.items():
                print(f"   {service:8} {name:24} {status}  {body}")
        print(f"-- /readyz 200 on both services {recovery:.3f}s after PostgreSQL was back")
        print(f"-- master and worker pids unchanged: {pids_after == pids}")

    for service, api in (("users", "/api/v1/users"), ("projects", "/api/v1/projects")):
        calls = during[service]
        assert calls["GET /livez"] == (200, {"status": "alive"})
        assert calls["GET /readyz"][0] == 503
        assert calls["GET /readyz"][1]["error"]["code"] == "database_unavailable"
        assert calls["GET /db-status"][0] == 503
        assert calls["GET /db-status"][1]["connected"] is False
        # A new project's owner is checked first, and the users service is down too (same outage).
        post_code = "dependency_unavailable" if service == "projects" else "database_unavailable"
        for call, code in ((f"GET {api}", "database_unavailable"), (f"POST {api}", post_code)):
            status, body = calls[call]
            assert status == 503, (service, call, body)
            assert body["error"]["code"] == code

    assert recovery < 5
    assert after_ready == [200] * 20
    assert pids_after == pids  # no worker restarted, no master restarted
    assert [r.json() for r in read_back_users] == written_users
    assert [r.json() for r in read_back_projects] == written_projects
    assert new_write.status_code == 201
