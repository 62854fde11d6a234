"""The projects API's request and response models (they also generate its OpenAPI schemas)."""

from __future__ import annotations

from datetime import datetime

from atlas_common.routing import MAX_ID
from atlas_common.schemas import Name, PartialUpdate, integer, page_model, text
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import SkipJsonSchema

Description = text(max_length=2000)
OwnerId = integer(ge=1, le=MAX_ID, description="id of a user of the users service")


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description = ""
    owner_id: OwnerId


class ProjectUpdate(PartialUpdate):
    name: Name | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    owner_id: OwnerId | SkipJsonSchema[None] = None


class Project(BaseModel):
    id: int
    name: str
    description: str
    owner_id: int
    created_at: datetime
    updated_at: datetime


ProjectPage = page_model(Project)
