"""Shortcuts to the serving app's shared objects, for views."""

from __future__ import annotations

from contextlib import AbstractContextManager

from flask import current_app

from .db import Pool
from .schema import Schema


def pool() -> Pool:
    return current_app.extensions["atlas"].pool


def schema() -> Schema:
    return current_app.extensions["atlas"].schema


def connection() -> AbstractContextManager:
    """``with connection() as conn:`` borrows one of this worker's pooled connections."""
    return pool().connection()
