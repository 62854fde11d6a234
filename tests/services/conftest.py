"""Fixtures for the service tests: migrated databases, Flask apps on them, real servers (python -m <svc> serve)."""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

# prometheus_client chooses its storage at import: give this test process its own directory first.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="atlas-test-metrics-")

import psycopg2
import pytest
import requests
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
def auth_db(database):
    migrate(database, "auth")
    return database


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


def close(app) -> None:
    """The app's pool, and its connection to the auth service's keys (no keep-alive left to delay a server's stop)."""
    atlas = app.extensions["atlas"]
    atlas.pool.close()
    if atlas.bearer is not None:
        atlas.bearer.keys.close()


@pytest.fixture
def users_app_factory(users_db, monkeypatch):
    """users_app_factory(ATLAS_AUTH_ISSUER=...) -> a users app with those settings."""
    apps = []

    def make(**settings: str):
        apps.append(create_app("users", users_db, monkeypatch, **settings))
        return apps[-1]

    yield make
    for app in apps:
        close(app)


@pytest.fixture
def users_app(users_db, monkeypatch):
    app = create_app("users", users_db, monkeypatch)
    yield app
    close(app)


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
        close(app)
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


# -- the auth service ----------------------------------------------------------------------------------


def write_keys(path: str, *pems: bytes) -> str:
    """A key file holding ``pems`` in that order (the first signs); returns its path."""
    from auth.signing import write_private

    write_private(path, b"".join(pems), overwrite=True)
    return path


@dataclass
class Auth:
    """A real auth server (``python -m auth serve``) with its own migrated database and key file."""

    server: ServiceProcess
    db: dict[str, str]  # its database's libpq variables
    key_file: str
    clients: list[dict] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.server.base_url

    def url(self, path: str) -> str:
        return self.server.url(path)

    def create_client(self, scopes: str, name: str = "test client") -> dict:
        """A client made as `python -m auth create-client` makes it (same functions, no subprocess)."""
        from auth.clients import clients, hash_secret, new_credentials

        client_id, secret = new_credentials()
        conn = connect(self.db)
        try:
            with conn:
                values = {
                    "client_id": client_id,
                    "name": name,
                    "scopes": scopes.split(),
                    "secret_hash": hash_secret(secret),
                }
                clients.create(conn, values)
        finally:
            conn.close()
        client = {"client_id": client_id, "client_secret": secret, "scopes": scopes.split()}
        self.clients.append(client)
        return client

    def token_response(self, client: dict, scope: str | None = None) -> requests.Response:
        data = {"grant_type": "client_credentials", **({"scope": scope} if scope is not None else {})}
        return requests.post(
            self.url("/oauth/token"), data=data, auth=(client["client_id"], client["client_secret"]), timeout=10
        )

    def token(self, scopes: str, ask: str | None = None) -> str:
        """An access token of a new client holding ``scopes`` (asking for ``ask``, default all of them)."""
        response = self.token_response(self.create_client(scopes), ask)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def restart(self, key_file: str | None = None) -> None:
        """Stop, and start again on the same port (the same issuer), with another key file if given."""
        self.server.__exit__(None, None, None)  # stops it and removes its working directory
        env = {**self.server.env, "ATLAS_AUTH_SIGNING_KEY_FILE": key_file or self.key_file}
        self.key_file = env["ATLAS_AUTH_SIGNING_KEY_FILE"]
        self.server = ServiceProcess("auth", env=env, port=self.server.port, threads=4).start()


def connect(env: dict[str, str]):
    return psycopg2.connect(
        host=env["PGHOST"], port=env["PGPORT"], dbname=env["PGDATABASE"], user=env["PGUSER"], password=env["PGPASSWORD"]
    )


@contextlib.contextmanager
def running_auth(postgres_server, key_file: str, port: int | None = None, **settings: str) -> Iterator[Auth]:
    """An auth server whose issuer is its own URL (on ``port``, default a free one); ``settings``: more ATLAS_*
    variables."""
    name = "auth_" + uuid.uuid4().hex[:10]
    db = postgres_server.create_database(name)
    migrate(db, "auth")
    env = {**db, "ATLAS_AUTH_SIGNING_KEY_FILE": key_file, **settings}
    server = ServiceProcess("auth", env=env, threads=4, **({"port": port} if port else {}))
    server.env["ATLAS_AUTH_ISSUER"] = server.base_url  # the port is chosen before the start
    auth = Auth(server.start(), db, key_file)
    try:
        yield auth
    finally:
        auth.server.__exit__(None, None, None)
        postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def key_pems() -> dict[str, bytes]:
    """Signing keys made once a session: two ES256 ("old", "new") and one RS256."""
    from auth.signing import generate

    return {"old": generate("ES256"), "new": generate("ES256"), "rsa": generate("RS256")}


@pytest.fixture
def auth_server(postgres_server, key_pems, tmp_path):
    """A fresh auth server (its own database and key file: the "old" key) for one test."""
    with running_auth(postgres_server, write_keys(str(tmp_path / "keys.pem"), key_pems["old"])) as auth:
        yield auth


@pytest.fixture(scope="module")
def shared_auth(postgres_server, key_pems, tmp_path_factory):
    """One auth server for a module's tests that neither restart it nor revoke its clients."""
    key_file = write_keys(str(tmp_path_factory.mktemp("auth") / "keys.pem"), key_pems["old"])
    with running_auth(postgres_server, key_file) as auth:
        yield auth
