"""The admin API's response models (they also generate its OpenAPI schemas). No model holds a secret."""

from __future__ import annotations

from datetime import datetime

from atlas_common.schemas import page_model
from pydantic import BaseModel


class Client(BaseModel):
    id: int
    client_id: str
    name: str
    scopes: list[str]
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None  # null: active; set: its secret is refused (invalid_client) from then on


ClientPage = page_model(Client)
