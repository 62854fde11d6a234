"""/livez, /readyz, /db-status, /metrics and /openapi.json through the Flask test client."""

from __future__ import annotations

import copy
import re

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from prometheus_client.parser import text_string_to_metric_families


def samples(client) -> dict[tuple[str, frozenset], float]:
    text = client.get("/metrics").data.decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_probes_with_the_database_up(users_client):
    assert users_client.get("/livez").json == {"status": "alive"}
    assert users_client.get("/readyz").json == {"status": "ready"}
    status = users_client.get("/db-status")
    assert status.status_code == 200
    body = status.json
    assert body["connected"] is True
    assert re.match(r"^\d+\.\d+", body["server_version"])
    assert 0 < body["latency_ms"] < 1000
    # The connection went back to the pool before the stats were taken.
    assert body["pool"] == {"size": 4, "in_use": 0, "idle": 1}


def test_probes_with_the_database_gone(users_db, postgres_server, monkeypatch):
    from tests.services.conftest import create_app

    client = create_app("users", users_db, monkeypatch).test_client()
    postgres_server.drop_database(users_db["PGDATABASE"])  # logins now fail, as in an outage

    assert client.get("/livez").status_code == 200  # never touches the database
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["error"]["code"] == "database_unavailable"
    status = client.get("/db-status")
    assert status.status_code == 503
    assert status.json["connected"] is False
    api = client.get("/api/v1/users")
    assert api.status_code == 503
    assert api.json["error"]["code"] == "database_unavailable"
    assert "users" not in api.json["error"]["message"]  # no libpq details (host, database) leak to clients


def test_metrics_count_requests_by_url_rule_and_status(users_client):
    user = users_client.post("/api/v1/users", json={"email": "m@example.org", "name": "M"}).json
    for _ in range(3):
        users_client.get(f"/api/v1/users/{user['id']}")
    users_client.get("/api/v1/users/999999")
    users_client.get("/db-status")

    found = samples(users_client)
    rule = "/api/v1/users/<id:user_id>"

    def count(name, **labels):
        labels = {"service": "users", "method": "GET", **labels}
        return found.get((name, frozenset(labels.items())), 0)

    # One series per route, not per id; the earlier tests' requests do not count here (own process files).
    assert count("atlas_http_requests_total", endpoint=rule, status="200") >= 3
    assert count("atlas_http_requests_total", endpoint=rule, status="404") >= 1
    assert count("atlas_http_request_duration_seconds_count", endpoint=rule, status="200") >= 3
    assert count("atlas_http_request_duration_seconds_bucket", endpoint=rule, status="200", le="+Inf") >= 3
    assert not any(("endpoint", "/api/v1/users/999999") in labels for _, labels in found)
    assert found[("atlas_db_pool_size", frozenset({("service", "users")}))] >= 4
    idle = found[("atlas_db_pool_connections", frozenset({("service", "users"), ("state", "idle")}))]
    assert idle >= 1


def test_openapi_is_generated_from_the_validating_models(users_client):
    from users.schemas import UserCreate

    doc = users_client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.")
    schemas = doc["components"]["schemas"]
    # The same model that rejects unknown fields documents that it does.
    assert schemas["UserCreate"]["additionalProperties"] is False
    assert set(schemas["UserCreate"]["required"]) == set(UserCreate.model_json_schema()["required"])
    create = doc["paths"]["/api/v1/users"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/UserCreate"
    assert {"201", "409", "422", "503"} <= set(create["responses"])
    limit = next(p for p in doc["paths"]["/api/v1/users"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 100

    # Every API route the app serves is documented, with the same methods.
    app = users_client.application
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented


def _refs(node) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return own.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


@pytest.mark.parametrize("service", ["users", "projects"])
def test_openapi_document_is_valid_openapi_3_1(service, request):
    doc = request.getfixturevalue(f"{service}_client").get("/openapi.json").json
    validate(doc)  # the OpenAPI 3.1 schema, and every $ref resolves
    refs = _refs(doc)
    assert f"#/components/schemas/{service.capitalize()[:-1]}Page" in refs
    assert refs <= {f"#/components/schemas/{name}" for name in doc["components"]["schemas"]}
    # The validator is not lenient: a Swagger-2-style body parameter is refused.
    broken = copy.deepcopy(doc)
    next(op for ops in broken["paths"].values() for op in ops.values() if "parameters" in op)["parameters"][0]["in"] = (
        "body"
    )
    with pytest.raises(OpenAPIValidationError):
        validate(broken)
