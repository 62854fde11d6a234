"""Models both services use: text fields, the error body, list paging, and the page envelope."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, create_model, model_validator

MAX_PAGE_SIZE = 100


def _without_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL: refuse it as bad input (422) rather than fail in the driver (500).
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


def text(**constraints: Any) -> Any:
    """The type of every free-text API field: a string with pydantic's StringConstraints and no NUL.

    The constraints come first, so that they stay plain JSON-schema keywords in the OpenAPI document.
    """
    return Annotated[str, StringConstraints(**constraints), AfterValidator(_without_nul)]


Name = text(strip_whitespace=True, min_length=1, max_length=200)


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


def _without_defaults(schema: dict[str, Any]) -> None:
    # A PATCH field that is not sent stays as it is: "absent" is not a default value, and null is refused.
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


class PartialUpdate(BaseModel):
    """Base of PATCH bodies: only the fields sent change; at least one is sent; null is no value.

    Subclasses declare fields as ``X | SkipJsonSchema[None] = None`` so that "not sent" is possible
    while the documented schema still says X.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_without_defaults)

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
