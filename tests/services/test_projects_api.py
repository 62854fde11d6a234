"""The projects API through the Flask test client, with the owner check off (USERS_SERVICE_URL unset).

The owner check against a real users server is in test_inter_service.py.
"""

from __future__ import annotations

from tests.services.test_users_api import assert_error

BASE = "/api/v1/projects"


def test_crud_without_owner_check_says_so(projects_client):
    created = projects_client.post(BASE, json={"name": "Atlas", "owner_id": 12345})
    assert created.status_code == 201, created.json
    assert created.headers["X-Owner-Check"] == "disabled"
    project = created.json
    assert project["description"] == ""
    assert project["owner_id"] == 12345  # stored as given: nothing to check it against

    got = projects_client.get(f"{BASE}/{project['id']}")
    assert got.json == project
    assert got.headers["X-Owner-Check"] == "disabled"

    changed = projects_client.patch(f"{BASE}/{project['id']}", json={"description": "maps", "owner_id": 7})
    assert changed.status_code == 200
    assert (changed.json["name"], changed.json["description"], changed.json["owner_id"]) == ("Atlas", "maps", 7)

    listed = projects_client.get(f"{BASE}?limit=1").json
    assert listed["items"] == [changed.json]
    assert listed["total"] == 1

    assert projects_client.delete(f"{BASE}/{project['id']}").status_code == 204
    assert_error(projects_client.get(f"{BASE}/{project['id']}"), 404, "not_found")
    assert_error(projects_client.patch(f"{BASE}/{project['id']}", json={"name": "x"}), 404, "not_found")


def test_invalid_projects_are_422(projects_client):
    for body, field in [
        ({"name": "A"}, "owner_id"),
        ({"name": "A", "owner_id": "5"}, "owner_id"),  # strict: a string is not an id
        ({"name": "A", "owner_id": 0}, "owner_id"),
        ({"name": "A", "owner_id": 2**63}, "owner_id"),
        ({"name": "A", "owner_id": 1, "description": "d" * 2001}, "description"),
        ({"name": "A", "owner_id": 1, "owner": 1}, "owner"),
        ({"name": "A", "owner_id": 1, "description": "\x00"}, "description"),  # PostgreSQL text cannot hold NUL
        ({"name": "A\x00", "owner_id": 1}, "name"),
    ]:
        error = assert_error(projects_client.post(BASE, json=body), 422, "validation_error")
        assert field in [d["field"] for d in error["details"]], body
    assert projects_client.get(BASE).json["total"] == 0
