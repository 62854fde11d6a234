"""Declare an API operation once: the route, its input and output models, its documentation.

``Api.operation`` registers the Flask view, checks the caller's token for the operation's scope (when
tokens are checked: bearer.py), validates the body/query with the given pydantic models before the view
runs, serialises the model the view returns, and records everything the OpenAPI document needs, so the
schema that validates a request is the schema that documents it, and the scope an operation checks is the
scope it documents.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response
from pydantic import BaseModel
from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter, IntegerConverter

from .bearer import authorize
from .scopes import SCOPES
from .validation import parse_body, parse_query

MAX_ID = 2**63 - 1  # PostgreSQL bigint
KEY_PATTERN = r"[A-Za-z0-9_-]{1,64}"  # <key:...> path parameters


class IdConverter(IntegerConverter):
    """``<id:name>``: a row id, 1..bigint max. Anything else is a 404 before the database sees it."""

    def to_python(self, value: str) -> int:
        number = super().to_python(value)
        # Raised here rather than failing the match (the converter's min/max): werkzeug would then
        # answer the path's other methods with 405, as if such a row could exist. It cannot, whatever
        # the method.
        if not 1 <= number <= MAX_ID:
            raise NotFound(f"no row has id {value}: ids run from 1 to {MAX_ID}")
        return number


class KeyConverter(BaseConverter):
    """``<key:name>``: a public identifier such as a client id: 1 to 64 of A-Z a-z 0-9 _ -. Anything else
    matches no route (404) before the database sees it."""

    regex = KEY_PATTERN


@dataclass(frozen=True)
class Operation:
    operation_id: str  # the view's name
    method: str
    rule: str  # Flask rule, relative to the Api's prefix
    summary: str
    status: int
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    errors: tuple[int, ...]
    notes: tuple[tuple[int, str], ...]  # (status, what it means here besides its generic reason)
    scope: str  # what the caller's token must grant (when tokens are checked)


class Api:
    def __init__(
        self,
        name: str,
        prefix: str,
        tag: str,
        *,
        read_scope: str,
        write_scope: str,
        response_headers: dict[str, str] | None = None,
    ) -> None:
        """``read_scope``: what a GET needs; ``write_scope``: what POST, PATCH and DELETE need (scopes.py)."""
        unknown = [s for s in (read_scope, write_scope) if s not in SCOPES]
        if unknown:
            raise TypeError(f"{name}: unknown scopes {unknown}: declare them in atlas_common/scopes.py")
        self.blueprint = Blueprint(name, __name__, url_prefix=prefix)
        self.prefix = prefix
        self.tag = tag
        self.read_scope, self.write_scope = read_scope, write_scope
        self.operations: list[Operation] = []
        # Headers every response of this API carries, with their documentation: {name: description}.
        self.response_headers = response_headers or {}

    def operation(
        self,
        method: str,
        rule: str,
        *,
        summary: str,
        status: int = 200,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        errors: tuple[int, ...] = (),
        notes: dict[int, str] | None = None,
    ) -> Callable:
        """``notes``: {status: what else it means for this operation}, for the document (a domain error code
        answered with a status the inputs already give, such as a 422 that is not a validation error)."""
        notes = notes or {}
        # The input errors follow from the inputs; views name only their domain errors.
        errors = (*errors, *notes, *((400, 413, 415, 422) if body else ()), *((422,) if query else ()))

        def decorate(view: Callable[..., Any]) -> Callable[..., Response]:
            op = Operation(
                view.__name__,
                method,
                rule,
                summary,
                status,
                body,
                query,
                response,
                tuple(sorted(set(errors))),
                tuple(sorted(notes.items())),
                self.read_scope if method == "GET" else self.write_scope,
            )
            self.operations.append(op)

            @functools.wraps(view)
            def endpoint(**path_args: Any) -> Response:
                authorize(op.scope)  # who may call comes before what they sent
                if body is not None:
                    path_args["body"] = parse_body(body)
                if query is not None:
                    path_args["query"] = parse_query(query)
                result = view(**path_args)
                payload = result.model_dump_json() if isinstance(result, BaseModel) else ""
                return Response(payload, status=status, mimetype="application/json" if payload else None)

            self.blueprint.add_url_rule(rule, view_func=endpoint, methods=[method])
            return endpoint

        return decorate
