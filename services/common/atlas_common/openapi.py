"""The OpenAPI 3.1 document, generated from the operations and pydantic models the APIs declare.

With tokens checked (a ``token_url``), the document says so: an OAuth2 client-credentials security scheme
with the token URL and the scopes its operations need, each operation's ``security`` (its scope) and its
401 and 403 answers. Without, it promises no security at all: a document that did would be false.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import bearer
from .routing import KEY_PATTERN, MAX_ID, Api
from .schemas import ErrorResponse
from .scopes import SCOPES

_PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")
_CONVERTER_SCHEMAS = {
    "id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    "int": {"type": "integer"},
    "key": {"type": "string", "pattern": f"^{KEY_PATTERN}$"},
}
_REF = "#/components/schemas/{model}"
_REASONS = {400: "Malformed request", 401: "No valid bearer token (`missing_token`, `invalid_token`)",
            403: "The token lacks the operation's scope (`insufficient_scope`)", 404: "Not found", 409: "Conflict",
            413: "Body too large", 415: "Body is not JSON", 422: "Invalid input (`validation_error`)",
            502: "A dependency answered unexpectedly", 503: "A dependency is unavailable",
            504: "A dependency timed out"}  # fmt: skip
SCHEME = "oauth2"
_AUTHENTICATION = {
    True: "`required`: every call needs a bearer token (ATLAS_AUTH_ISSUER is set)",
    False: "`disabled`: tokens are not checked (ATLAS_AUTH_ISSUER is unset)",
}


def _path(prefix: str, rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = [
        {"name": m["name"], "in": "path", "required": True,
         "schema": _CONVERTER_SCHEMAS.get(m["conv"], {"type": "string"})}
        for m in _PARAM.finditer(rule)
    ]  # fmt: skip
    return _PARAM.sub(lambda m: "{" + m["name"] + "}", prefix + rule), params


def _query_params(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    props = schemas[model.__name__]["properties"]
    required = set(schemas[model.__name__].get("required", ()))
    return [{"name": n, "in": "query", "required": n in required, "schema": s} for n, s in props.items()]


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}


def build(title: str, version: str, apis: list[Api], token_url: str | None = None) -> dict[str, Any]:
    """``token_url``: where tokens are issued, when this service checks them; None when it does not."""
    secured = token_url is not None
    models: set[type[BaseModel]] = {ErrorResponse}
    for api in apis:
        for op in api.operations:
            models.update(m for m in (op.body, op.query, op.response) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, defs = models_json_schema([(m, "validation") for m in ordered], ref_template=_REF)
    schemas = defs.get("$defs", {})

    paths: dict[str, Any] = {}
    for api in apis:
        header_docs = {bearer.HEADER: _AUTHENTICATION[secured], **api.response_headers}
        headers = {name: {"description": text, "schema": {"type": "string"}} for name, text in header_docs.items()}
        for op in api.operations:
            path, params = _path(api.prefix, op.rule)
            if op.query is not None:
                params += _query_params(op.query, schemas)
            ok: dict[str, Any] = {"description": "Success" if op.response else "Done, no content"}
            if op.response is not None:
                ok["content"] = _json(op.response)
            ok["headers"] = headers
            responses: dict[str, Any] = {str(op.status): ok}
            notes = dict(op.notes)
            # 401 and 403 come with the token check, and only with it (a note on 403 says what else it may mean).
            statuses = {*op.errors, 503}
            statuses = statuses | {401, 403} if secured else statuses - {401, 403}
            for status in sorted(statuses):
                reason = ", ".join(filter(None, (_REASONS.get(status, "Error"), notes.get(status))))
                responses[str(status)] = {"description": reason, "content": _json(ErrorResponse)}
            entry: dict[str, Any] = {
                "summary": op.summary,
                "operationId": op.operation_id,
                "tags": [api.tag],
                "responses": responses,
            }
            if secured:
                entry["security"] = [{SCHEME: [op.scope]}]
            if params:
                entry["parameters"] = params
            if op.body is not None:
                entry["requestBody"] = {"required": True, "content": _json(op.body)}
            paths.setdefault(path, {})[op.method.lower()] = entry
    components: dict[str, Any] = {"schemas": schemas}
    if secured:
        used = {op.scope for api in apis for op in api.operations}
        components["securitySchemes"] = {
            SCHEME: {
                "type": "oauth2",
                "description": "Access tokens of the Atlas auth service (OAuth 2.0 client credentials grant, "
                "RFC 6749 4.4): `Authorization: Bearer <token>`",
                "flows": {
                    "clientCredentials": {
                        "tokenUrl": token_url,
                        "scopes": {scope: text for scope, text in SCOPES.items() if scope in used},
                    }
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": components,
    }
