"""Request input -> pydantic models, or a 4xx ApiError that says exactly what is wrong."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from .errors import ApiError

M = TypeVar("M", bound=BaseModel)


def _problems(exc: ValidationError) -> list[dict[str, Any]]:
    # A PATCH field is `X | None`: pydantic reports each union branch (the None branch, and X under a
    # location like "name.function-after[...]"). The request bodies are flat objects, so the field is
    # the first location element and the None branch's complaint says nothing useful.
    errors = [err for err in exc.errors() if err["type"] != "none_required"] or exc.errors()
    return [
        {"field": str(err["loc"][0]) if err["loc"] else None, "problem": err["msg"].removeprefix("Value error, ")}
        for err in errors
    ]


def _summary(problems: list[dict[str, Any]]) -> str:
    return "; ".join(f"{p['field']}: {p['problem']}" if p["field"] else p["problem"] for p in problems)


def parse_body(model: type[M]) -> M:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "the request body must be JSON (Content-Type: application/json)")
    raw = request.get_data(cache=False)  # raises 413 above MAX_CONTENT_LENGTH
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(422, "validation_error", "the request body must be a JSON object")
    try:
        # strict: JSON types are taken as sent ("5" is not an integer, 1 is not a string).
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        problems = _problems(exc)
        raise ApiError(422, "validation_error", _summary(problems), problems) from None


def parse_query(model: type[M]) -> M:
    args = request.args
    repeated = [key for key in args if len(args.getlist(key)) > 1]
    if repeated:
        raise ApiError(422, "validation_error", f"query parameter {repeated[0]!r} given more than once")
    try:
        # lax: query strings are text, "10" is meant as 10.
        return model.model_validate(args.to_dict())
    except ValidationError as exc:
        problems = _problems(exc)
        raise ApiError(422, "validation_error", _summary(problems), problems) from None
