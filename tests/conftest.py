"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.support.postgres import PostgresServer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def repo_root() -> str:
    return REPO_ROOT


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the test session (per xdist worker)."""
    with PostgresServer().running() as server:
        yield server


@pytest.fixture
def database(postgres_server):
    """A fresh, empty database with its own owner role; yields its libpq environment."""
    name = "t_" + uuid.uuid4().hex[:12]
    env = postgres_server.create_database(name)
    yield env
    postgres_server.drop_database(name)
