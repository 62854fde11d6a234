"""The users API through the Flask test client, on a real migrated PostgreSQL database."""

from __future__ import annotations

import pytest

BASE = "/api/v1/users"


def create(client, email="ann@example.org", name="Ann"):
    response = client.post(BASE, json={"email": email, "name": name})
    assert response.status_code == 201, response.json
    return response.json


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    error = response.json["error"]
    assert error["code"] == code
    assert error["message"]
    return error


def test_create_get_update_delete(users_client):
    user = create(users_client, "ann@example.org", "  Ann  ")
    assert user["email"] == "ann@example.org"
    assert user["name"] == "Ann"  # surrounding whitespace is not part of a name
    assert user["created_at"] == user["updated_at"]

    assert users_client.get(f"{BASE}/{user['id']}").json == user

    changed = users_client.patch(f"{BASE}/{user['id']}", json={"name": "Ann B."})
    assert changed.status_code == 200
    assert changed.json["name"] == "Ann B."
    assert changed.json["email"] == "ann@example.org"  # untouched field kept
    assert changed.json["updated_at"] > user["updated_at"]
    assert users_client.get(f"{BASE}/{user['id']}").json == changed.json

    deleted = users_client.delete(f"{BASE}/{user['id']}")
    assert deleted.status_code == 204
    assert deleted.data == b""
    assert_error(users_client.get(f"{BASE}/{user['id']}"), 404, "not_found")
    assert_error(users_client.delete(f"{BASE}/{user['id']}"), 404, "not_found")


def test_duplicate_email_is_409_whatever_the_case(users_client):
    create(users_client, "dup@example.org")
    assert_error(users_client.post(BASE, json={"email": "DUP@example.org", "name": "B"}), 409, "email_taken")
    other = create(users_client, "other@example.org")
    assert_error(users_client.patch(f"{BASE}/{other['id']}", json={"email": "Dup@Example.org"}), 409, "email_taken")
    assert users_client.get(BASE).json["total"] == 2


def test_paging_is_ordered_and_bounded(users_client):
    ids = [create(users_client, f"u{i}@example.org", f"U{i}")["id"] for i in range(7)]

    first = users_client.get(f"{BASE}?limit=3").json
    assert [u["id"] for u in first["items"]] == ids[:3]
    assert (first["limit"], first["offset"], first["total"]) == (3, 0, 7)
    last = users_client.get(f"{BASE}?limit=3&offset=6").json
    assert [u["id"] for u in last["items"]] == ids[6:]
    beyond = users_client.get(f"{BASE}?offset=50").json
    assert beyond["items"] == []
    assert beyond["total"] == 7  # the total is known even past the end
    assert users_client.get(BASE).json["limit"] == 20  # the default page size

    assert users_client.get(f"{BASE}?limit=100").status_code == 200
    for query, field in [("limit=101", "limit"), ("limit=0", "limit"), ("offset=-1", "offset"), ("limit=abc", "limit")]:
        error = assert_error(users_client.get(f"{BASE}?{query}"), 422, "validation_error")
        assert error["details"][0]["field"] == field, query
    assert_error(users_client.get(f"{BASE}?limit=5&limit=6"), 422, "validation_error")
    assert_error(users_client.get(f"{BASE}?sort=name"), 422, "validation_error")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a@example.org"}, "name"),  # missing
        ({"email": "a@example.org", "name": 5}, "name"),  # wrong type
        ({"email": "a@example.org", "name": ""}, "name"),  # empty
        ({"email": "a@example.org", "name": "x" * 201}, "name"),  # too long
        ({"email": "not-an-email", "name": "A"}, "email"),
        ({"email": ["a@example.org"], "name": "A"}, "email"),
        ({"email": "a@example.org", "name": "A", "admin": True}, "admin"),  # unknown field
        ({"email": "a@example.org", "name": "A\x00B"}, "name"),  # PostgreSQL text cannot hold NUL
        ({"email": "a\x00@example.org", "name": "A"}, "email"),
    ],
)
def test_invalid_create_bodies_are_422_naming_the_field(users_client, body, field):
    error = assert_error(users_client.post(BASE, json=body), 422, "validation_error")
    assert field in [d["field"] for d in error["details"]]
    assert field in error["message"]
    assert users_client.get(BASE).json["total"] == 0


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "at least one"),
        ({"name": None}, "may not be null"),
        ({"id": 5}, "Extra inputs"),
        ({"name": "\x00"}, "name: must not contain the NUL character"),  # the field, not a union branch
        ({"name": ""}, "name: String should have at least 1 character"),
    ],
)
def test_invalid_updates_are_422(users_client, body, problem):
    user = create(users_client)
    error = assert_error(users_client.patch(f"{BASE}/{user['id']}", json=body), 422, "validation_error")
    assert problem in error["message"]
    assert users_client.get(f"{BASE}/{user['id']}").json == user


def test_malformed_and_non_json_bodies(users_client):
    assert_error(users_client.post(BASE, data='{"email": ', content_type="application/json"), 400, "malformed_json")
    assert_error(users_client.post(BASE, data=b"\xff\xfe", content_type="application/json"), 400, "malformed_json")
    assert_error(users_client.post(BASE, data="email=a", content_type="text/plain"), 415, "unsupported_media_type")
    assert_error(users_client.post(BASE, json=[{"email": "a@example.org"}]), 422, "validation_error")


def test_oversized_body_is_413(users_db, monkeypatch):
    from tests.services.conftest import create_app

    app = create_app("users", users_db, monkeypatch, ATLAS_MAX_BODY_BYTES="200")
    client = app.test_client()
    assert_error(client.post(BASE, json={"email": "a@example.org", "name": "x" * 200}), 413, "request_entity_too_large")
    assert client.post(BASE, json={"email": "a@example.org", "name": "x" * 50}).status_code == 201


def test_unknown_routes_ids_and_methods_are_json(users_client):
    assert_error(users_client.get("/nowhere"), 404, "not_found")
    assert_error(users_client.get(f"{BASE}/0"), 404, "not_found")
    assert_error(users_client.get(f"{BASE}/abc"), 404, "not_found")
    for method in ("get", "patch", "delete"):  # 404 for every method; past bigint: no 500 from the database
        for user_id in (0, 2**63):
            assert_error(getattr(users_client, method)(f"{BASE}/{user_id}", json={"name": "A"}), 404, "not_found")
    response = users_client.put(f"{BASE}/1", json={})
    assert_error(response, 405, "method_not_allowed")
    assert "PATCH" in response.headers["Allow"]


def test_request_id_is_kept_or_generated(users_client):
    kept = users_client.get("/livez", headers={"X-Request-ID": "trace-42.a"})
    assert kept.headers["X-Request-ID"] == "trace-42.a"
    generated = users_client.get("/livez").headers["X-Request-ID"]
    assert len(generated) == 32
    # A value that could forge a log line is replaced, not echoed.
    forged = users_client.get("/livez", headers={"X-Request-ID": 'x" , "status": 200'})
    assert forged.headers["X-Request-ID"] != 'x" , "status": 200'
    assert users_client.get("/livez").headers["X-Request-ID"] != generated


def test_unexpected_errors_are_a_json_500_without_internals(users_app):
    def broken():
        raise RuntimeError("secret internal detail")

    users_app.add_url_rule("/broken", view_func=broken)
    response = users_app.test_client().get("/broken")
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert error == {"code": "internal_error", "message": "internal server error"}
