"""Models both services use: text and integer fields, the error body, list paging, and the page envelope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    create_model,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

MAX_PAGE_SIZE = 100

# Whitespace: Unicode's White_Space (what pydantic's strip_whitespace strips) and U+FEFF (the byte-order mark),
# because that is the one set `[\s\x85\ufeff]` names both in ECMA-262, the document's regex dialect (its `\s` has
# U+FEFF, not U+0085), and in pydantic's Rust regex (the other way round). Python's `\s` is another set again.
WHITESPACE = "".join(map(chr, [*range(0x9, 0xE), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029,
                               0x202F, 0x205F, 0x3000, 0xFEFF]))  # fmt: skip
WHITESPACE_CLASS = r"\s\x85\ufeff"  # the body of a regex character class
# The text rules in the document. JSON-schema patterns are searched, not matched: anchors where the whole counts.
NUL_FREE_PATTERN = r"^[^\u0000]*$"
NOT_BLANK_PATTERN = f"[^{WHITESPACE_CLASS}]"


def _add_patterns(schema: JsonSchemaValue, patterns: list[str]) -> JsonSchemaValue:
    """``schema`` also requiring each of ``patterns``: a JSON schema holds one ``pattern``, more go into ``allOf``."""
    patterns = [*([schema.pop("pattern")] if "pattern" in schema else []), *patterns]
    if len(patterns) == 1:
        schema["pattern"] = patterns[0]
    else:
        schema["allOf"] = [*schema.get("allOf", ()), *({"pattern": p} for p in patterns)]
    return schema


@dataclass(frozen=True)
class _TextRules:
    """What every text field refuses beyond pydantic's constraints, checked after them and stated in the document
    as patterns (the messages stay ours: "must not contain the NUL character", not "should match pattern")."""

    strip: bool

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return _add_patterns(handler(schema), [NUL_FREE_PATTERN, *([NOT_BLANK_PATTERN] if self.strip else [])])

    def _check(self, value: str) -> str:
        # PostgreSQL text cannot hold NUL: refuse it as bad input (422) rather than fail in the driver (500).
        if "\x00" in value:
            raise ValueError("must not contain the NUL character")
        if self.strip:
            value = value.strip(WHITESPACE)
            if not value:
                raise ValueError("must not be only whitespace")
        return value


def text(*, strip_whitespace: bool = False, **constraints: Any) -> Any:
    """The type of every free-text API field: a string with pydantic's StringConstraints and no NUL.

    The constraints come first, so that they stay plain JSON-schema keywords in the OpenAPI document, and they
    judge the text as sent, as the document does. ``strip_whitespace``: then surrounding whitespace is removed,
    and text that was only whitespace refused (pydantic's own strip_whitespace would come before its length and
    pattern checks, and "  " would pass the document's minLength to be refused by the service).
    """
    return Annotated[str, StringConstraints(**constraints), _TextRules(strip_whitespace)]


Name = text(strip_whitespace=True, min_length=1, max_length=200)

# Doubles hold every integer up to here; past it a JSON number with a fraction or exponent may not be what was sent.
_EXACT_FLOAT_INTS = 2**53


def _integral_float_as_int(value: Any) -> Any:
    # JSON schema's "integer" is a number without a fractional part, 5.0 as much as 5, while strict validation
    # takes only 5. Past 2**53 the float is refused (422) rather than read as a neighbouring integer.
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_FLOAT_INTS:
        return int(value)
    return value


def integer(**constraints: Any) -> Any:
    """The type of every integer API field: an int with pydantic's Field constraints, taking 5.0 as 5.

    The constraints come first, as in ``text()``: after the validator they would not be JSON-schema keywords.
    """
    return Annotated[int, Field(**constraints), BeforeValidator(_integral_float_as_int)]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ListQuery(BaseModel):
    """Paging of list endpoints; the bound on limit keeps one request from reading a whole table."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)
    offset: int = Field(default=0, ge=0, le=2_147_483_647)


def page_model(item: type[BaseModel]) -> type[BaseModel]:
    """``<Item>Page``: one page of a list, with the paging that produced it and the total count."""
    return create_model(
        f"{item.__name__}Page",
        items=(list[item], ...),
        limit=(int, ...),
        offset=(int, ...),
        total=(int, ...),
    )


def _patch_schema(schema: dict[str, Any]) -> None:
    # A PATCH field that is not sent stays as it is: "absent" is not a default value, and null is refused.
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)
    schema["minProperties"] = 1  # `{}` changes nothing and is refused (_something_to_change)


class PartialUpdate(BaseModel):
    """Base of PATCH bodies: only the fields sent change; at least one is sent; null is no value.

    Subclasses declare fields as ``X | SkipJsonSchema[None] = None`` so that "not sent" is possible
    while the documented schema still says X.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_patch_schema)

    @model_validator(mode="after")
    def _something_to_change(self):
        if not self.model_fields_set:
            raise ValueError(f"give at least one of: {', '.join(type(self).model_fields)}")
        nulls = sorted(f for f in self.model_fields_set if getattr(self, f) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} may not be null")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)
