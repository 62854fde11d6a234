"""The auth service as deployed (`python -m auth serve`, its own PostgreSQL): the token endpoint (OAuth 2.0
client credentials grant), the tokens and their claims checked with the keys it publishes, every error
answer, the secrets stored only as argon2id hashes, revocation through the admin API, key rotation, and
the refusal to start without a usable signing key."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

import pytest
import requests
from argon2 import PasswordHasher
from atlas_common.config import ConfigError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet

from tests.services.conftest import connect, running_auth, write_keys
from tests.support.processes import ServiceProcess

TOKEN = "/oauth/token"
CLIENTS = "/api/v1/clients"
GRANT = {"grant_type": "client_credentials"}
CLIENT_FAILED = "client authentication failed: unknown client, wrong secret or revoked client"


def published(auth) -> KeySet:
    response = requests.get(auth.url("/.well-known/jwks.json"), timeout=5)
    assert response.status_code == 200
    return KeySet.import_key_set(response.json())


def verified(auth, token: str) -> tuple[dict, dict]:
    """(header, claims) of ``token``, its signature checked with the published key its kid names."""
    header = jws.extract_compact(token.encode()).headers()
    key = published(auth).get_by_kid(header["kid"])
    return header, jwt.decode(token, key, algorithms=[key["alg"]]).claims


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_oauth_error(response: requests.Response, status: int, error: str) -> dict:
    """An RFC 6749 §5.2 error: the status, JSON {error, error_description}, not cached."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"error", "error_description"}, body
    assert body["error"] == error and body["error_description"], body
    return body


# -- tokens ----------------------------------------------------------------------------------------


def test_a_token_by_http_basic_and_its_claims_verified_with_the_published_keys(shared_auth):
    client = shared_auth.create_client("users:read projects:read")
    before = int(time.time())
    response = shared_auth.token_response(client)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "users:read projects:read"  # no scope asked: all the client's

    header, claims = verified(shared_auth, body["access_token"])
    (key,) = published(shared_auth).keys
    assert header == {"typ": "at+jwt", "alg": "ES256", "kid": key.kid}
    assert key.kid == key.thumbprint()  # RFC 7638
    assert claims["iss"] == shared_auth.issuer
    assert claims["aud"] == "atlas"
    assert claims["sub"] == claims["client_id"] == client["client_id"]
    assert claims["scope"] == "users:read projects:read"
    assert before <= claims["iat"] <= time.time() and claims["exp"] - claims["iat"] == 900
    assert claims["jti"]


def test_credentials_in_the_form_and_a_narrower_scope(shared_auth):
    client = shared_auth.create_client("users:read users:write")
    form = {**GRANT, "client_id": client["client_id"], "client_secret": client["client_secret"], "scope": "users:read"}
    response = requests.post(shared_auth.url(TOKEN), data=form, timeout=5)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "users:read"
    assert verified(shared_auth, response.json()["access_token"])[1]["scope"] == "users:read"


def test_the_lifetime_is_a_setting(postgres_server, key_pems, tmp_path):
    with running_auth(
        postgres_server, write_keys(str(tmp_path / "k.pem"), key_pems["old"]), ATLAS_AUTH_TOKEN_LIFETIME="60"
    ) as auth:
        response = auth.token_response(auth.create_client("users:read"))
        assert response.json()["expires_in"] == 60
        claims = verified(auth, response.json()["access_token"])[1]
        assert claims["exp"] - claims["iat"] == 60


def test_an_rsa_key_signs_rs256(postgres_server, key_pems, tmp_path):
    with running_auth(postgres_server, write_keys(str(tmp_path / "k.pem"), key_pems["rsa"])) as auth:
        header, claims = verified(auth, auth.token("users:read"))
        assert claims["scope"] == "users:read"
        assert header["alg"] == "RS256"
        assert published(auth).keys[0].key_type == "RSA"


# -- errors ----------------------------------------------------------------------------------------


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.mark.parametrize(
    ("case", "status", "error"),
    [
        ("wrong secret (Basic)", 401, "invalid_client"),
        ("unknown client (Basic)", 401, "invalid_client"),
        ("wrong secret (form)", 401, "invalid_client"),
        ("no credentials", 401, "invalid_client"),
        ("malformed Basic", 401, "invalid_client"),
        ("Basic not UTF-8", 401, "invalid_client"),
        ("Basic after a no-break space", 401, "invalid_client"),
        ("Basic without credentials", 401, "invalid_client"),
        ("client id with NUL", 401, "invalid_client"),
        ("unknown scope", 400, "invalid_scope"),
        ("scope the client lacks", 400, "invalid_scope"),
        ("malformed scope", 400, "invalid_scope"),
        ("another grant type", 400, "unsupported_grant_type"),
        ("no grant_type", 400, "invalid_request"),
        ("JSON body", 400, "invalid_request"),
        ("parameters in the URL", 400, "invalid_request"),
        ("a parameter twice", 400, "invalid_request"),
        ("Basic and client_secret", 400, "invalid_request"),
    ],
)
def test_token_endpoint_errors(shared_auth, case, status, error):
    client = shared_auth.create_client("users:read")
    good = _basic(client["client_id"], client["client_secret"])
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    url = shared_auth.url(TOKEN)
    requests_by_case = {
        "wrong secret (Basic)": dict(data=GRANT, headers=_basic(client["client_id"], "wrong")),
        "unknown client (Basic)": dict(data=GRANT, headers=_basic("no-such-client", client["client_secret"])),
        "wrong secret (form)": dict(data={**GRANT, "client_id": client["client_id"], "client_secret": "wrong"}),
        "no credentials": dict(data=GRANT),
        "malformed Basic": dict(data=GRANT, headers={"Authorization": "Basic !!!not-base64"}),
        # base64 of b"\xff\xfe:abc"; and obs-text whitespace where the space belongs (both once a 500 in Authlib).
        "Basic not UTF-8": dict(data=GRANT, headers={"Authorization": "Basic //46YWJj"}),
        "Basic after a no-break space": dict(data=GRANT, headers={"Authorization": "Basic\xa0YTpi"}),
        "Basic without credentials": dict(data=GRANT, headers={"Authorization": "Basic"}),
        "client id with NUL": dict(data={**GRANT, "client_id": "a\x00b", "client_secret": "x"}),
        "unknown scope": dict(data={**GRANT, "scope": "users:read users:admin"}, headers=good),
        "scope the client lacks": dict(data={**GRANT, "scope": "projects:write"}, headers=good),
        "malformed scope": dict(data={**GRANT, "scope": 'users:read  "x"'}, headers=good),
        "another grant type": dict(data={"grant_type": "password"}, headers=good),
        "no grant_type": dict(data={"scope": "users:read"}, headers=good),
        "JSON body": dict(json=GRANT, headers=good),
        "parameters in the URL": dict(params=GRANT, data="", headers={**good, **form}),
        "a parameter twice": dict(data=[("grant_type", "client_credentials"), ("scope", "a"), ("scope", "b")]),
        "Basic and client_secret": dict(data={**GRANT, "client_secret": client["client_secret"]}, headers=good),
    }
    response = requests.post(url, timeout=10, **requests_by_case[case])
    body = assert_oauth_error(response, status, error)
    if status == 401:
        # One answer whatever failed, with the scheme the client may use (RFC 6749 §5.2).
        assert response.headers["WWW-Authenticate"] == 'Basic realm="atlas"'
        assert body["error_description"] == CLIENT_FAILED
    if case == "unknown scope":
        assert "users:admin" in body["error_description"]
    if case == "scope the client lacks":
        assert "projects:write" in body["error_description"]


def test_an_unknown_client_and_a_wrong_secret_look_the_same(shared_auth):
    client = shared_auth.create_client("users:read")
    answers, seconds = [], []
    for client_id, secret in [(client["client_id"], "wrong"), ("unknown-client", client["client_secret"])]:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            response = requests.post(shared_auth.url(TOKEN), data=GRANT, auth=(client_id, secret), timeout=10)
            times.append(time.perf_counter() - started)
        answers.append((response.status_code, response.json(), response.headers["WWW-Authenticate"]))
        seconds.append(min(times))
    assert answers[0] == answers[1]
    # An unknown id costs an argon2 verification too (some 20 ms; a request without one, a few ms).
    assert seconds[1] > seconds[0] / 2, seconds


def test_the_token_endpoint_takes_only_post(shared_auth):
    response = requests.get(shared_auth.url(TOKEN), timeout=5)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


# -- secrets, the admin API, revocation ----------------------------------------------------------


def test_secrets_are_stored_only_as_argon2id_hashes(shared_auth):
    client = shared_auth.create_client("users:read")
    conn = connect(shared_auth.db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT secret_hash, clients::text FROM clients WHERE client_id = %s", (client["client_id"],))
            secret_hash, whole_row = cur.fetchone()
    finally:
        conn.close()
    assert secret_hash.startswith("$argon2id$")
    assert client["client_secret"] not in whole_row
    assert PasswordHasher().verify(secret_hash, client["client_secret"])


def test_the_admin_api_lists_clients_without_secrets_and_needs_auth_admin(shared_auth):
    admin = shared_auth.token("auth:admin")
    listed = requests.get(shared_auth.url(CLIENTS), headers=bearer(admin), params={"limit": 100}, timeout=5)
    assert listed.status_code == 200, listed.text
    assert listed.headers["X-Authentication"] == "required"
    items = listed.json()["items"]
    assert {c["client_id"] for c in shared_auth.clients} <= {item["client_id"] for item in items}
    assert all(
        set(item) == {"id", "client_id", "name", "scopes", "created_at", "updated_at", "revoked_at"} for item in items
    )
    assert not any(c["client_secret"] in listed.text for c in shared_auth.clients)
    assert "argon2" not in listed.text

    missing = requests.get(shared_auth.url(CLIENTS), timeout=5)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="atlas"'
    assert missing.json()["error"]["code"] == "missing_token"

    reader = shared_auth.token("users:read")
    refused = requests.get(shared_auth.url(CLIENTS), headers=bearer(reader), timeout=5)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    assert 'scope="auth:admin"' in refused.headers["WWW-Authenticate"]
    revoke = requests.post(shared_auth.url(f"{CLIENTS}/x/revoke"), headers=bearer(reader), timeout=5)
    assert revoke.status_code == 403  # writing needs auth:admin as well

    assert (
        requests.get(shared_auth.url(f"{CLIENTS}/no-such-client"), headers=bearer(admin), timeout=5).status_code == 404
    )
    assert requests.get(shared_auth.url(f"{CLIENTS}/bad%20id"), headers=bearer(admin), timeout=5).status_code == 404


def test_a_revoked_client_gets_invalid_client(auth_server):
    admin = auth_server.token("auth:admin")
    client = auth_server.create_client("users:read")
    issued_before = auth_server.token_response(client)
    assert issued_before.status_code == 200

    revoked = requests.post(
        auth_server.url(f"{CLIENTS}/{client['client_id']}/revoke"), headers=bearer(admin), timeout=5
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    body = assert_oauth_error(auth_server.token_response(client), 401, "invalid_client")
    assert body["error_description"] == CLIENT_FAILED  # as an unknown client

    again = requests.post(auth_server.url(f"{CLIENTS}/{client['client_id']}/revoke"), headers=bearer(admin), timeout=5)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]  # the first revocation stands
    shown = requests.get(auth_server.url(f"{CLIENTS}/{client['client_id']}"), headers=bearer(admin), timeout=5)
    assert shown.json()["revoked_at"] == revoked.json()["revoked_at"]
    unknown = requests.post(auth_server.url(f"{CLIENTS}/nobody/revoke"), headers=bearer(admin), timeout=5)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"


# -- keys ------------------------------------------------------------------------------------------


def test_the_published_keys_are_public_only(shared_auth):
    keys = requests.get(shared_auth.url("/.well-known/jwks.json"), timeout=5).json()["keys"]
    assert len(keys) == 1
    assert keys[0]["use"] == "sig" and keys[0]["alg"] == "ES256" and keys[0]["crv"] == "P-256"
    assert "d" not in keys[0]  # no private part
    metadata = requests.get(shared_auth.url("/.well-known/oauth-authorization-server"), timeout=5).json()
    assert metadata["issuer"] == shared_auth.issuer
    assert metadata["token_endpoint"] == shared_auth.issuer + TOKEN
    assert metadata["grant_types_supported"] == ["client_credentials"]


def test_key_rotation_never_breaks_a_token_in_use(auth_server, key_pems, tmp_path):
    old_token = auth_server.token("auth:admin")
    old_kid = jws.extract_compact(old_token.encode()).headers()["kid"]

    # 1. Both published, the new key signs: the old key's tokens still pass, new ones use the new key.
    auth_server.restart(write_keys(str(tmp_path / "both.pem"), key_pems["new"], key_pems["old"]))
    assert {key.kid for key in published(auth_server)} == {old_kid, ECKey.import_key(key_pems["new"]).thumbprint()}
    assert requests.get(auth_server.url(CLIENTS), headers=bearer(old_token), timeout=5).status_code == 200
    new_token = auth_server.token("auth:admin")
    assert jws.extract_compact(new_token.encode()).headers()["kid"] == ECKey.import_key(key_pems["new"]).thumbprint()
    assert verified(auth_server, old_token)[1]["iss"] == verified(auth_server, new_token)[1]["iss"]

    # 2. The old key dropped: its tokens are refused, the new ones pass.
    auth_server.restart(write_keys(str(tmp_path / "new.pem"), key_pems["new"]))
    assert [key.kid for key in published(auth_server)] == [ECKey.import_key(key_pems["new"]).thumbprint()]
    refused = requests.get(auth_server.url(CLIENTS), headers=bearer(old_token), timeout=5)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_token"
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert requests.get(auth_server.url(CLIENTS), headers=bearer(new_token), timeout=5).status_code == 200


# -- no key, no start --------------------------------------------------------------------------------


def _encrypted_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )


def _p384_key() -> bytes:
    return _curve_key(ec.SECP384R1())


def _curve_key(curve: ec.EllipticCurve) -> bytes:
    return ec.generate_private_key(curve).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_key(pem: bytes) -> bytes:
    private = serialization.load_pem_private_key(pem, None)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


BAD_KEY_FILES = {
    "unset": None,
    "missing": b"",  # the path names no file
    "unreadable": b"-",  # a directory
    "empty": b"\n",
    "garbage": b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",  # pragma: allowlist secret
    "public key": "public",
    "encrypted": "encrypted",
    "P-384": "p384",
    "brainpoolP256r1 (a curve joserfc lacks)": "brainpool",
    "twice the same key": "twice",
}


@pytest.fixture(params=list(BAD_KEY_FILES))
def bad_key_file(request, tmp_path, key_pems) -> str | None:
    content = BAD_KEY_FILES[request.param]
    path = str(tmp_path / "keys.pem")
    if content is None:
        return None
    if content == b"":
        return path
    if content == b"-":
        os.mkdir(path)
        return path
    made = {
        "public": lambda: _public_key(key_pems["old"]),
        "encrypted": _encrypted_key,
        "p384": _p384_key,
        "brainpool": lambda: _curve_key(ec.BrainpoolP256R1()),
        "twice": lambda: key_pems["old"] + key_pems["old"],
    }
    return write_keys(path, made[content]() if isinstance(content, str) else content)


def test_serve_refuses_to_start_without_a_usable_key(bad_key_file, auth_db):
    env = {**auth_db, "ATLAS_AUTH_ISSUER": "http://auth.test"}
    if bad_key_file is not None:
        env["ATLAS_AUTH_SIGNING_KEY_FILE"] = bad_key_file
    server = ServiceProcess("auth", env=env).start(wait_path=None)
    try:
        server.proc.wait(timeout=30)
    finally:
        server.stop()
    assert server.proc.returncode == 2
    lines = server.logs().strip().splitlines()
    assert len(lines) == 1, lines  # one line, no traceback
    assert lines[0].startswith("invalid configuration: ATLAS_AUTH_SIGNING_KEY_FILE must be a readable PEM file")


def test_the_app_is_not_built_without_a_usable_key(bad_key_file, auth_db, monkeypatch):
    from tests.services.conftest import create_app

    settings = {"ATLAS_AUTH_ISSUER": "http://auth.test"}
    if bad_key_file is not None:
        settings["ATLAS_AUTH_SIGNING_KEY_FILE"] = bad_key_file
    with pytest.raises(ConfigError, match="ATLAS_AUTH_SIGNING_KEY_FILE"):
        create_app("auth", auth_db, monkeypatch, **settings)


def test_the_openapi_document_describes_the_admin_api_and_its_scope(shared_auth):
    from openapi_spec_validator import validate

    doc = requests.get(shared_auth.url("/openapi.json"), timeout=5).json()
    validate(doc)
    flow = doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == shared_auth.issuer + TOKEN
    assert set(flow["scopes"]) == {"auth:admin"}
    revoke = doc["paths"]["/api/v1/clients/{client_id}/revoke"]["post"]
    assert revoke["security"] == [{"oauth2": ["auth:admin"]}]
    assert {"401", "403", "404"} <= set(revoke["responses"])
    assert revoke["parameters"][0]["schema"] == {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}


def test_migrate_and_help(auth_db):
    env = {**os.environ, **auth_db}
    again = subprocess.run([sys.executable, "-m", "auth", "migrate"], env=env, capture_output=True, text=True)
    assert (again.returncode, again.stdout.strip()) == (0, "auth migrate: schema is up to date")
    helped = subprocess.run([sys.executable, "-m", "auth", "--help"], capture_output=True, text=True)
    assert all(word in helped.stdout for word in ("migrate", "serve", "create-client", "generate-key"))
    others = subprocess.run([sys.executable, "-m", "users", "--help"], capture_output=True, text=True)
    assert "create-client" not in others.stdout  # a service's own commands are its own


def test_no_token_or_secret_reaches_the_logs_even_at_debug(postgres_server, key_pems, tmp_path):
    key_file = write_keys(str(tmp_path / "k.pem"), key_pems["old"])
    with running_auth(postgres_server, key_file, ATLAS_LOG_LEVEL="DEBUG") as auth:
        client = auth.create_client("users:read")
        token = auth.token_response(client).json()["access_token"]
        requests.post(auth.url(TOKEN), data=GRANT, auth=(client["client_id"], "a-wrong-secret"), timeout=5)
        time.sleep(0.2)
        logs = auth.server.logs()
    assert '"level":"debug"' in logs  # debug lines are written
    issued = [json.loads(line) for line in logs.splitlines() if '"issued an access token"' in line]
    assert [(line["client_id"], line["scope"]) for line in issued] == [(client["client_id"], "users:read")]
    for secret in (token, token.split(".")[2], client["client_secret"], "a-wrong-secret"):
        assert secret not in logs
