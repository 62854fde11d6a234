"""Fixtures for the service tests: migrated databases, Flask apps on them, real servers (python -m <svc> serve)."""

from __future__ import annotations

import importlib
import os
import tempfile
import uuid

# prometheus_client chooses its storage at import: give this test process its own directory first.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="atlas-test-metrics-")

import psycopg2
import pytest
from atlas_common import migrations

from tests.support.processes import ServiceProcess


def migrate(env: dict[str, str], package: str) -> None:
    conn = psycopg2.connect(
        host=env["PGHOST"], port=env["PGPORT"], dbname=env["PGDATABASE"], user=env["PGUSER"], password=env["PGPASSWORD"]
    )
    try:
        migrations.apply(conn, package)
    finally:
        conn.close()


@pytest.fixture
def users_db(database):
    migrate(database, "users")
    return database


@pytest.fixture
def projects_db(database):
    migrate(database, "projects")
    return database


def create_app(package: str, db_env: dict[str, str], monkeypatch, **settings: str):
    # libpq reads PG* from the process environment when the pool connects, as in production.
    for key, value in db_env.items():
        monkeypatch.setenv(key, value)
    return importlib.import_module(f"{package}.app").create_app({**db_env, **settings})


@pytest.fixture
def users_app(users_db, monkeypatch):
    app = create_app("users", users_db, monkeypatch)
    yield app
    app.extensions["atlas"].pool.close()


@pytest.fixture
def users_client(users_app):
    return users_app.test_client()


@pytest.fixture
def projects_app_factory(projects_db, monkeypatch):
    """projects_app_factory(USERS_SERVICE_URL=...) -> a projects app with those settings."""
    apps = []

    def make(**settings: str):
        apps.append(create_app("projects", projects_db, monkeypatch, **settings))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["atlas"].pool.close()
        users = app.extensions["projects.users"]
        if users is not None:
            users.session.close()  # no keep-alive connection left to delay the users server's shutdown


@pytest.fixture
def projects_client(projects_app_factory):
    return projects_app_factory().test_client()


@pytest.fixture
def users_server(postgres_server):
    """A real users gunicorn (1 worker) on a loopback port, with its own migrated database (as deployed:
    one database per service). ``.env`` holds that database's libpq variables."""
    name = "users_" + uuid.uuid4().hex[:10]
    env = postgres_server.create_database(name)
    migrate(env, "users")
    with ServiceProcess("users", env=env, workers=1, threads=4) as server:
        yield server
    postgres_server.drop_database(name)
