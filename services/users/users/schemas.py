"""The users API's request and response models (they also generate its OpenAPI schemas)."""

from __future__ import annotations

from datetime import datetime

from atlas_common.schemas import WHITESPACE_CLASS, Name, PartialUpdate, page_model, text
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import SkipJsonSchema

# Deliberately simple: a real check is a confirmation mail, not a regular expression. Surrounding whitespace is
# allowed here (text() strips it after this check), none inside.
_SPACE, _PART = f"[{WHITESPACE_CLASS}]*", f"[^@{WHITESPACE_CLASS}]+"
Email = text(strip_whitespace=True, max_length=254, pattern=f"^{_SPACE}{_PART}@{_PART}\\.{_PART}{_SPACE}$")


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: Name


class UserUpdate(PartialUpdate):
    email: Email | SkipJsonSchema[None] = None
    name: Name | SkipJsonSchema[None] = None


class User(BaseModel):
    id: int
    email: str
    name: str
    created_at: datetime
    updated_at: datetime


UserPage = page_model(User)
