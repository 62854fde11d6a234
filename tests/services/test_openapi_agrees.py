"""The OpenAPI document says what the services refuse, so that a client (or schemathesis, `make fuzz`) that
trusts it neither sends input the service refuses nor expects input the document forbids to be accepted.

Each rule is checked in the document and at run time: PATCH bodies need one field, text holds no NUL, text
that is trimmed must not be only whitespace and is measured as sent, integers may be written 5.0, and a
projects 422 may be owner_not_found.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

import pytest
from atlas_common.schemas import NOT_BLANK_PATTERN, NUL_FREE_PATTERN, WHITESPACE, WHITESPACE_CLASS
from pydantic import StringConstraints, TypeAdapter

SERVICES = {"users": "/api/v1/users", "projects": "/api/v1/projects"}
VALID = {"users": {"email": "ann@example.org", "name": "Ann"}, "projects": {"name": "Atlas", "owner_id": 1}}


def document(client) -> dict:
    return client.get("/openapi.json").json


def body_schema(doc: dict, path: str, method: str) -> dict:
    ref = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]


def patterns(schema: dict) -> list[str]:
    """Every pattern a string schema requires: its own and those of its allOf branches."""
    return [s["pattern"] for s in (schema, *schema.get("allOf", ())) if "pattern" in s]


def created(client, service: str) -> int:
    response = client.post(SERVICES[service], json=VALID[service])
    assert response.status_code == 201, response.json
    return response.json["id"]


def assert_422(response, message: str) -> None:
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "validation_error"
    assert response.json["error"]["message"] == message


@pytest.fixture(params=list(SERVICES))
def service(request):
    """(name, test client) of each service; projects with the owner check off (owner_id stored as given)."""
    return request.param, request.getfixturevalue(f"{request.param}_client")


def test_patch_bodies_need_a_field_in_the_document_and_at_run_time(service) -> None:
    name, client = service
    schema = body_schema(document(client), SERVICES[name] + "/{" + name[:-1] + "_id}", "patch")
    assert schema["minProperties"] == 1
    assert all("default" not in prop for prop in schema["properties"].values())  # absent is not a value
    fields = ", ".join(schema["properties"])
    assert_422(client.patch(f"{SERVICES[name]}/{created(client, name)}", json={}), f"give at least one of: {fields}")


def test_every_text_field_of_a_request_body_documents_the_nul_rule(service) -> None:
    doc = document(service[1])
    bodies = [body_schema(doc, path, method) for path, ops in doc["paths"].items() for method, op in ops.items()
              if "requestBody" in op]  # fmt: skip
    text_fields = [(b["title"], field, s) for b in bodies for field, s in b.get("properties", {}).items()]
    text_fields = [(model, field, s) for model, field, s in text_fields if s.get("type") == "string"]
    assert len(text_fields) == 4  # users: email, name; projects: name, description; in create and update
    for model, field, schema in text_fields:
        assert NUL_FREE_PATTERN in patterns(schema), (model, field)
        assert "pattern" not in schema or "allOf" not in schema  # one place for a field's patterns


def test_nul_is_refused_with_its_own_message(service) -> None:
    name, client = service
    message = "name: must not contain the NUL character"  # not pydantic's "should match pattern"
    assert_422(client.post(SERVICES[name], json={**VALID[name], "name": "A\x00"}), message)
    assert_422(client.patch(f"{SERVICES[name]}/{created(client, name)}", json={"name": " \x00 "}), message)


def test_the_nul_pattern_refuses_nul_only() -> None:
    assert re.search(NUL_FREE_PATTERN, "a\nb c")  # anchored, yet over several lines
    assert not re.search(NUL_FREE_PATTERN, "a\x00")
    assert not re.search(NUL_FREE_PATTERN, "a\n\x00")


def test_a_name_that_is_only_whitespace_is_refused_as_documented(service) -> None:
    name, client = service
    schema = body_schema(document(client), SERVICES[name], "post")["properties"]["name"]
    assert NOT_BLANK_PATTERN in patterns(schema)
    assert schema["minLength"] == 1 and schema["maxLength"] == 200
    for blank in (" ", "\xa0", "\t\u3000\ufeff"):
        assert_422(
            client.post(SERVICES[name], json={**VALID[name], "name": blank}), "name: must not be only whitespace"
        )
    # Measured as sent, as the document's maxLength says; then trimmed.
    too_long = client.post(SERVICES[name], json={**VALID[name], "name": "x" * 200 + " "})
    assert_422(too_long, "name: String should have at most 200 characters")
    trimmed = client.post(SERVICES[name], json={**VALID[name], "name": " " + "x" * 199})
    assert trimmed.status_code == 201 and trimmed.json["name"] == "x" * 199


def test_an_email_may_come_with_surrounding_whitespace_as_documented(users_client) -> None:
    schema = body_schema(document(users_client), SERVICES["users"], "post")["properties"]["email"]
    [own] = [p for p in patterns(schema) if p not in (NUL_FREE_PATTERN, NOT_BLANK_PATTERN)]
    # ASCII only here: Python's `\s` agrees with the document's (ECMA-262) on it.
    for email, accepted in [("ann @example.org", False), ("ann@example", False), (" ann@example.org\t", True)]:
        assert bool(re.search(own, email)) is accepted, email
        response = users_client.post(SERVICES["users"], json={"email": email, "name": "Ann"})
        assert response.status_code == (201 if accepted else 422), response.json
    assert response.json["email"] == "ann@example.org"  # trimmed


def test_the_whitespace_class_is_one_set_for_the_document_and_the_service() -> None:
    every = [chr(i) for i in range(0x110000) if not 0xD800 <= i < 0xE000]
    # What pydantic's strip_whitespace strips (Unicode White_Space), and the byte-order mark.
    strip = TypeAdapter(Annotated[str, StringConstraints(strip_whitespace=True)])
    assert {c for c in every if strip.validate_python(c) == ""} | {"\ufeff"} == set(WHITESPACE)
    # The class as pydantic's (Rust) regex reads it, as in the Email pattern.
    rust = TypeAdapter(Annotated[str, StringConstraints(pattern=f"^[{WHITESPACE_CLASS}]$")])
    assert {c for c in every if _accepts(rust, c)} == set(WHITESPACE)
    # As ECMA-262 reads it: its \s is WhiteSpace (TAB, VT, FF, ZWNBSP, any Zs) or LineTerminator (LF, CR, LS, PS).
    ecma_s = {c for c in every if unicodedata.category(c) == "Zs"} | set("\t\x0b\x0c\ufeff\n\r\u2028\u2029")
    assert WHITESPACE_CLASS == r"\s\x85\ufeff"
    assert ecma_s | {"\x85", "\ufeff"} == set(WHITESPACE)


def _accepts(adapter: TypeAdapter, value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValueError:
        return False
    return True


def test_an_integer_may_be_written_as_a_whole_float(projects_client) -> None:
    schema = body_schema(document(projects_client), SERVICES["projects"], "post")["properties"]["owner_id"]
    assert schema["type"] == "integer"  # JSON schema: 5.0 is an integer
    response = projects_client.post(SERVICES["projects"], json={"name": "A", "owner_id": 5.0})
    assert response.status_code == 201 and response.json["owner_id"] == 5
    for owner_id in (5.5, 2.0**53 + 2, "5"):  # past 2**53 a float may not be the integer that was sent
        response = projects_client.post(SERVICES["projects"], json={"name": "A", "owner_id": owner_id})
        assert_422(response, "owner_id: Input should be a valid integer")


def test_the_projects_422_documents_owner_not_found(projects_client) -> None:
    doc = document(projects_client)
    path = SERVICES["projects"]
    for responses in (
        doc["paths"][path]["post"]["responses"],
        doc["paths"][path + "/{project_id}"]["patch"]["responses"],
    ):
        assert "validation_error" in responses["422"]["description"]
        assert "owner_not_found" in responses["422"]["description"]
    # Only where an owner is given.
    assert "owner_not_found" not in str(doc["paths"][path]["get"]["responses"])
