"""projects checking owners against a real users server (gunicorn on a loopback port) over HTTP."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

BASE = "/api/v1/projects"


@pytest.fixture
def owner(users_server):
    response = requests.post(users_server.url("/api/v1/users"), json={"email": "o@example.org", "name": "O"}, timeout=5)
    assert response.status_code == 201
    return response.json()


@pytest.fixture
def projects(projects_app_factory, users_server):
    # Short timeout so that the slow-service case is quick; retries as deployed.
    app = projects_app_factory(USERS_SERVICE_URL=users_server.base_url, USERS_SERVICE_TIMEOUT="0.5")
    return app.test_client()


def users_requests(users_server, request_id: str) -> list[dict]:
    lines = [json.loads(line) for line in users_server.logs().splitlines() if line.startswith("{")]
    # Access lines only: a warning logged while serving the request carries its id too.
    return [line for line in lines if line.get("request_id") == request_id and line["logger"] == "atlas.access"]


def stored(projects) -> int:
    return projects.get(BASE).json["total"]


def test_existing_owner_is_accepted_and_the_request_id_passed_on(projects, owner, users_server):
    response = projects.post(BASE, json={"name": "P", "owner_id": owner["id"]}, headers={"X-Request-ID": "chain-1"})
    assert response.status_code == 201, response.json
    assert response.headers["X-Owner-Check"] == "enabled"
    assert response.json["owner_id"] == owner["id"]
    seen = users_requests(users_server, "chain-1")
    assert [(line["method"], line["path"], line["status"]) for line in seen] == [
        ("GET", f"/api/v1/users/{owner['id']}", 200)
    ]


def test_missing_owner_is_422(projects, owner):
    response = projects.post(BASE, json={"name": "P", "owner_id": owner["id"] + 1000})
    assert response.status_code == 422
    assert response.json["error"]["code"] == "owner_not_found"
    assert str(owner["id"] + 1000) in response.json["error"]["message"]
    assert stored(projects) == 0

    project = projects.post(BASE, json={"name": "P", "owner_id": owner["id"]}).json
    moved = projects.patch(f"{BASE}/{project['id']}", json={"owner_id": 999_999})
    assert moved.status_code == 422
    assert projects.get(f"{BASE}/{project['id']}").json["owner_id"] == owner["id"]
    renamed = projects.patch(f"{BASE}/{project['id']}", json={"name": "Q"})  # no owner change, no check needed
    assert renamed.status_code == 200


def test_users_service_stopped_is_503_naming_it(projects, owner, users_server):
    users_server.stop()
    response = projects.post(BASE, json={"name": "P", "owner_id": owner["id"]})
    assert response.status_code == 503
    error = response.json["error"]
    assert error["code"] == "dependency_unavailable"
    assert "users service" in error["message"]
    assert "refused" in error["message"].lower()
    assert error["details"] == {"dependency": "users", "url": users_server.base_url}
    assert stored(projects) == 0


def test_users_service_errors_are_retried_with_backoff_then_503(projects, owner, users_server, postgres_server):
    postgres_server.drop_database(users_server.env["PGDATABASE"])  # users now answers 503 to everything
    start = time.monotonic()
    response = projects.post(BASE, json={"name": "P", "owner_id": owner["id"]}, headers={"X-Request-ID": "retry-1"})
    took = time.monotonic() - start
    assert response.status_code == 503
    assert response.json["error"]["code"] == "dependency_unavailable"
    assert "answered 503" in response.json["error"]["message"]
    # USERS_SERVICE_RETRIES=2 (default): the first call and two retries, the last after a backoff pause.
    assert [line["status"] for line in users_requests(users_server, "retry-1")] == [503, 503, 503]
    assert took >= 0.4


def test_users_service_slow_is_a_timeout_not_a_hang(projects, owner, users_server):
    users_server.pause()  # accepts connections, answers nothing
    try:
        start = time.monotonic()
        response = projects.post(BASE, json={"name": "P", "owner_id": owner["id"]})
        took = time.monotonic() - start
    finally:
        users_server.resume()
    assert response.status_code == 504, response.json
    assert response.json["error"]["code"] == "dependency_timeout"
    assert response.json["error"]["details"]["dependency"] == "users"
    assert 0.5 <= took < 1.5  # one timeout: read timeouts are not retried
    assert stored(projects) == 0


def test_owner_check_off_when_url_unset(projects_app_factory):
    client = projects_app_factory().test_client()  # USERS_SERVICE_URL unset; no users service anywhere
    response = client.post(BASE, json={"name": "P", "owner_id": 424242})
    assert response.status_code == 201
    assert response.headers["X-Owner-Check"] == "disabled"


def test_owner_checks_keep_one_connection_per_thread(projects_app_factory, owner, users_server):
    # More threads than requests' pool held (10): a pool smaller than the threads closes the extra
    # connections after each call, and the owner check opens a new TCP connection per request under load.
    threads, calls = 12, 20
    app = projects_app_factory(USERS_SERVICE_URL=users_server.base_url, ATLAS_THREADS=str(threads))
    users = app.extensions["projects.users"]

    def create(n: int) -> list[int]:
        client = app.test_client()
        return [
            client.post(BASE, json={"name": f"P{n}-{i}", "owner_id": owner["id"]}).status_code for i in range(calls)
        ]

    with ThreadPoolExecutor(threads) as pool:
        statuses = [status for batch in pool.map(create, range(threads)) for status in batch]
    assert statuses == [201] * (threads * calls)
    assert users.session.num_requests == threads * calls
    assert users.session.num_connections <= threads  # kept alive and reused, whichever thread calls


def test_owner_check_goes_straight_to_the_users_service(projects, owner, monkeypatch):
    # Proxy variables of the environment are not read (nor honoured): a call inside the cluster goes to
    # USERS_SERVICE_URL itself. Nothing listens on port 9.
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    response = projects.post(BASE, json={"name": "P", "owner_id": owner["id"]})
    assert response.status_code == 201, response.json
