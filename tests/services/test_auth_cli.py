"""`python -m auth create-client` and `python -m auth generate-key`, run as an operator runs them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import requests
from argon2 import PasswordHasher
from auth.signing import parse
from joserfc.jwk import KeySet

from tests.services.conftest import connect, running_auth


def auth_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "auth", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rows(db: dict[str, str]) -> list[tuple]:
    conn = connect(db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT client_id, name, scopes, secret_hash FROM clients ORDER BY id")
            return cur.fetchall()
    finally:
        conn.close()


def test_create_client_prints_one_json_object_and_stores_only_a_hash(auth_db):
    done = auth_cli("create-client", "--name", "ci pipeline", "--scopes", "projects:write users:read", env=auth_db)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    created = json.loads(lines[0])
    assert set(created) == {"client_id", "client_secret", "scopes"}
    assert created["scopes"] == ["users:read", "projects:write"]  # each once, in the declared order
    assert len(created["client_secret"]) >= 40

    ((client_id, name, scopes, secret_hash),) = rows(auth_db)
    assert (client_id, name, scopes) == (created["client_id"], "ci pipeline", ["users:read", "projects:write"])
    assert secret_hash.startswith("$argon2id$") and created["client_secret"] not in secret_hash
    assert PasswordHasher().verify(secret_hash, created["client_secret"])


def test_a_created_client_gets_tokens(postgres_server, key_pems, tmp_path):
    from tests.services.conftest import write_keys

    with running_auth(postgres_server, write_keys(str(tmp_path / "k.pem"), key_pems["old"])) as auth:
        created = json.loads(auth_cli("create-client", "--name", "x", "--scopes", "users:read", env=auth.db).stdout)
        response = auth.token_response(created)
        assert response.status_code == 200, response.text
        assert response.json()["scope"] == "users:read"


def test_create_client_refuses_unknown_scopes_and_bad_names(auth_db):
    unknown = auth_cli("create-client", "--name", "x", "--scopes", "users:read users:delete admin", env=auth_db)
    assert unknown.returncode == 2
    assert unknown.stdout == ""
    assert unknown.stderr.strip() == (
        "auth create-client: unknown scope(s): users:delete admin; "
        "known: users:read users:write projects:read projects:write auth:admin"
    )
    empty = auth_cli("create-client", "--name", "x", "--scopes", "  ", env=auth_db)
    assert (empty.returncode, "no scope given" in empty.stderr) == (2, True)
    blank = auth_cli("create-client", "--name", "   ", "--scopes", "users:read", env=auth_db)
    assert blank.returncode == 2
    assert "--name must not be only whitespace" in blank.stderr
    missing = auth_cli("create-client", "--scopes", "users:read", env=auth_db)
    assert missing.returncode == 2 and "--name" in missing.stderr  # argparse's usage error
    assert rows(auth_db) == []  # nothing was created


def test_create_client_before_migrate_says_so(database):
    done = auth_cli("create-client", "--name", "x", "--scopes", "users:read", env=database)
    assert done.returncode == 1
    assert (
        done.stderr.strip() == "auth create-client: the database has no clients table: run python -m auth migrate first"
    )


def test_create_client_without_a_database_fails_in_one_line(postgres_server):
    env = {**postgres_server.libpq_env(database="nowhere"), "ATLAS_DB_CONNECT_TIMEOUT": "1"}
    done = auth_cli("create-client", "--name", "x", "--scopes", "users:read", env=env)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert "cannot connect to the database" in done.stderr and 'database "nowhere" does not exist' in done.stderr


def test_generate_key_writes_a_private_pem_only_its_owner_reads(tmp_path):
    path = tmp_path / "signing.pem"
    done = auth_cli("generate-key", str(path))
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (key,) = parse(path.read_text())
    assert printed == {"path": str(path), "kid": key.thumbprint(), "alg": "ES256"}
    assert key.curve_name == "P-256" and key.is_private


def test_generate_key_refuses_to_overwrite_unless_forced(tmp_path):
    path = tmp_path / "signing.pem"
    path.write_text("precious\n")
    path.chmod(0o644)
    refused = auth_cli("generate-key", str(path))
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"auth generate-key: {path} exists already; --force overwrites it"
    assert path.read_text() == "precious\n"

    forced = auth_cli("generate-key", "--force", "--algorithm", "RS256", str(path))
    assert forced.returncode == 0, forced.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # tightened, not kept
    (key,) = parse(path.read_text())
    assert (key.key_type, key.raw_value.key_size, json.loads(forced.stdout)["alg"]) == ("RSA", 3072, "RS256")


def test_generated_keys_concatenate_into_a_rotation_file(tmp_path, postgres_server):
    """The rotation steps of services/README.md: generate, put the new key first, both are published."""
    old, new = tmp_path / "old.pem", tmp_path / "new.pem"
    kids = [json.loads(auth_cli("generate-key", str(p)).stdout)["kid"] for p in (old, new)]
    both = tmp_path / "keys.pem"
    both.write_text(new.read_text() + old.read_text())
    with running_auth(postgres_server, str(both)) as auth:
        published = KeySet.import_key_set(requests.get(auth.url("/.well-known/jwks.json"), timeout=5).json())
        assert [key.kid for key in published] == [kids[1], kids[0]]
        token = auth.token("users:read")
        assert token  # signed by the first: checked in test_auth_service's rotation test
