"""users and projects with tokens checked (ATLAS_AUTH_ISSUER set) against a real auth server over HTTP: every
401 and 403, the probes left open, the owner check with the caller's token passed on, the auth service
away (503, and the services still start), key rotation as the services see it, the X-Authentication
header both ways, and the OpenAPI documents' security only when tokens are checked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
import requests
from auth.signing import parse
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.services.conftest import migrate, write_keys
from tests.support.net import free_port
from tests.support.processes import ServiceProcess

USERS = "/api/v1/users"
PROJECTS = "/api/v1/projects"
PROBES = ("/livez", "/readyz", "/db-status", "/metrics", "/openapi.json")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def users(users_app_factory, shared_auth):
    """A users app checking tokens against the shared auth server."""
    return users_app_factory(ATLAS_AUTH_ISSUER=shared_auth.issuer).test_client()


def assert_401(response, code: str = "invalid_token", why: str | None = None) -> None:
    assert response.status_code == 401, response.json
    assert response.json["error"]["code"] == code
    challenge = response.headers["WWW-Authenticate"]
    if code == "missing_token":
        assert challenge == 'Bearer realm="atlas"'  # RFC 6750 §3.1: no error code without a token
    else:
        assert challenge.startswith('Bearer realm="atlas", error="invalid_token", error_description="')
        if why:
            assert why in challenge and why in response.json["error"]["message"]
    assert response.headers["X-Authentication"] == "required"


def assert_403(response, scope: str) -> None:
    assert response.status_code == 403, response.json
    assert response.json["error"]["code"] == "insufficient_scope"
    assert scope in response.json["error"]["message"]
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="atlas", error="insufficient_scope"')
    assert challenge.endswith(f'scope="{scope}"')


# -- forged tokens ----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signing_key(auth) -> ECKey:
    with open(auth.key_file) as f:
        return parse(f.read())[0]


def claims_for(auth, **changes) -> dict:
    now = int(time.time())
    claims = {"iss": auth.issuer, "aud": "atlas", "sub": "forger", "client_id": "forger", "iat": now}
    claims |= {"exp": now + 300, "scope": "users:read users:write", "jti": uuid.uuid4().hex}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def forge(auth, key: ECKey | None = None, header: dict | None = None, **changes) -> str:
    """A token signed with the auth server's own key (or ``key``), with the claims changed as given."""
    key = key or signing_key(auth)
    head = {"alg": "ES256", "typ": "at+jwt", "kid": signing_key(auth).kid, **(header or {})}
    return jwt.encode({k: v for k, v in head.items() if v is not None}, claims_for(auth, **changes), key)


def test_a_forged_token_with_valid_claims_passes(users, shared_auth):
    """The forging helper makes tokens the service accepts: each case below changes one thing only."""
    assert users.get(USERS, headers=bearer(forge(shared_auth))).status_code == 200


def _hs256_with_the_public_key(auth) -> str:
    """The classic confusion: HMAC keyed with the public key, alg HS256."""
    public = json.dumps(signing_key(auth).as_dict(private=False)).encode()
    head = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": signing_key(auth).kid}).encode())
    body = _b64(json.dumps(claims_for(auth)).encode())
    signature = _b64(hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{signature}"


def _unsigned(auth) -> str:
    head = _b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": signing_key(auth).kid}).encode())
    return f"{head}.{_b64(json.dumps(claims_for(auth)).encode())}."


def _unknown_key(auth) -> str:
    key = ECKey.generate_key("P-256")
    return forge(auth, key=key, header={"kid": key.thumbprint()})


def _tampered(auth) -> str:
    head, _, signature = auth.token("users:read").split(".")
    return f"{head}.{_b64(json.dumps(claims_for(auth, scope='users:write')).encode())}.{signature}"


def _segments(header) -> str:
    """header.payload.signature with this (JSON) header, an empty object for payload and a dummy signature."""
    import base64
    import json

    def b64(value) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{b64(header)}.{b64({})}.AA"


INVALID = {
    "garbage": (lambda auth: "not-a-jwt", "not a signed JWT"),
    "expired": (lambda auth: forge(auth, iat=int(time.time()) - 1000, exp=int(time.time()) - 100), "it has expired"),
    "another issuer": (lambda auth: forge(auth, iss="http://evil.test"), "it was not issued by"),
    "another audience": (lambda auth: forge(auth, aud="billing"), "it is not meant for the audience atlas"),
    "no subject": (lambda auth: forge(auth, sub=None), "it lacks the claim sub"),
    "issued in the future": (lambda auth: forge(auth, iat=int(time.time()) + 3600), "issued in the future"),
    "bad signature": (
        lambda auth: forge(auth, key=ECKey.generate_key("P-256")),
        "the signature does not verify",
    ),
    "tampered claims": (_tampered, "the signature does not verify"),
    "unknown key": (_unknown_key, "signed with a key the auth service does not publish"),
    "no kid": (lambda auth: forge(auth, header={"kid": None}), "it names no signing key"),
    "not an access token": (lambda auth: forge(auth, header={"typ": "JWT"}), "not an access token"),
    "HS256 with the public key": (_hs256_with_the_public_key, "its key signs with ES256"),
    "alg none": (_unsigned, "its key signs with ES256"),
    # A header that is JSON but not an object: joserfc only checks that "alg" is `in` it.
    "header a list": (lambda auth: _segments(["alg"]), "not a signed JWT"),
    "header a string": (lambda auth: _segments("alg"), "not a signed JWT"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_invalid_token_is_401_saying_why(users, shared_auth, case):
    make, why = INVALID[case]
    token = make(shared_auth)
    assert_401(users.get(USERS, headers=bearer(token)), "invalid_token", why)
    assert_401(users.post(USERS, json={"email": "a@example.org", "name": "A"}, headers=bearer(token)), why=why)


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "token abc", ""],
    ids=["no header", "Basic", "another scheme", "empty"],
)
def test_no_bearer_token_is_401_with_a_bare_challenge(users, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = users.get(USERS, headers=headers)
    assert_401(response, "missing_token")
    assert "Authorization: Bearer" in response.json["error"]["message"]


def test_bearer_without_a_token_is_invalid(users):
    assert_401(users.get(USERS, headers={"Authorization": "Bearer "}), "invalid_token", "malformed")
    assert_401(users.get(USERS, headers={"Authorization": "Bearer a b"}), "invalid_token", "malformed")


def test_each_method_needs_its_scope(users, shared_auth):
    read, write = shared_auth.token("users:read"), shared_auth.token("users:write")
    both = shared_auth.token("users:read users:write")
    created = users.post(USERS, json={"email": "ann@example.org", "name": "Ann"}, headers=bearer(write))
    assert created.status_code == 201, created.json
    one = f"{USERS}/{created.json['id']}"

    assert users.get(USERS, headers=bearer(read)).status_code == 200
    assert users.get(one, headers=bearer(read)).status_code == 200
    assert_403(users.get(USERS, headers=bearer(write)), "users:read")
    assert_403(users.get(one, headers=bearer(write)), "users:read")
    assert_403(users.post(USERS, json={"email": "b@example.org", "name": "B"}, headers=bearer(read)), "users:write")
    assert_403(users.patch(one, json={"name": "Anna"}, headers=bearer(read)), "users:write")
    assert_403(users.delete(one, headers=bearer(read)), "users:write")
    assert users.patch(one, json={"name": "Anna"}, headers=bearer(both)).status_code == 200
    assert users.delete(one, headers=bearer(write)).status_code == 204

    other_service = shared_auth.token("projects:read projects:write auth:admin")
    refused = users.get(USERS, headers=bearer(other_service))
    assert_403(refused, "users:read")
    assert refused.json["error"]["details"] == {
        "required": "users:read",
        "granted": ["auth:admin", "projects:read", "projects:write"],
    }


def test_the_token_is_checked_before_the_input(users, shared_auth):
    """Who may call comes first: a caller without a token learns nothing about what the API accepts."""
    assert_401(users.post(USERS, data="{not json", headers={"Content-Type": "application/json"}), "missing_token")
    read = shared_auth.token("users:read")
    assert_403(users.post(USERS, json={"unknown": 1}, headers=bearer(read)), "users:write")


def test_projects_checks_its_own_scopes(projects_app_factory, shared_auth):
    projects = projects_app_factory(ATLAS_AUTH_ISSUER=shared_auth.issuer).test_client()  # owner check off
    write, read = shared_auth.token("projects:write"), shared_auth.token("projects:read")
    users_only = shared_auth.token("users:read users:write")
    assert projects.post(PROJECTS, json={"name": "P", "owner_id": 1}, headers=bearer(write)).status_code == 201
    assert projects.get(PROJECTS, headers=bearer(read)).status_code == 200
    assert_403(projects.get(PROJECTS, headers=bearer(users_only)), "projects:read")
    assert_403(projects.post(PROJECTS, json={"name": "P", "owner_id": 1}, headers=bearer(read)), "projects:write")
    assert_401(projects.get(PROJECTS), "missing_token")


def test_probes_stay_open(users):
    for path in PROBES:
        response = users.get(path)
        assert response.status_code == 200, (path, response.json)
        assert "X-Authentication" not in response.headers  # an API header only


# -- the X-Authentication header, and the OpenAPI document, both ways ---------------------------------


def test_every_api_response_says_whether_tokens_are_checked(users, users_client, shared_auth):
    read = shared_auth.token("users:read")
    for response in (
        users.get(USERS, headers=bearer(read)),
        users.get(USERS),  # 401
        users.get(f"{USERS}/not-a-number", headers=bearer(read)),  # 404 of the router
        users.put(USERS, headers=bearer(read)),  # 405
    ):
        assert response.headers["X-Authentication"] == "required", response.status_code
    for response in (users_client.get(USERS), users_client.get(f"{USERS}/not-a-number"), users_client.put(USERS)):
        assert response.headers["X-Authentication"] == "disabled", response.status_code
    assert users_client.get(USERS).status_code == 200  # off: no token needed


def test_the_openapi_document_describes_the_security_only_when_tokens_are_checked(users, users_client, shared_auth):
    on = users.get("/openapi.json").json
    flow = on["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == f"{shared_auth.issuer}/oauth/token"
    assert set(flow["scopes"]) == {"users:read", "users:write"}
    for path, methods in on["paths"].items():
        for method, operation in methods.items():
            scope = "users:read" if method == "get" else "users:write"
            assert operation["security"] == [{"oauth2": [scope]}], (path, method)
            assert {"401", "403"} <= set(operation["responses"]), (path, method)
    ok = on["paths"][USERS]["get"]["responses"]["200"]["headers"]["X-Authentication"]
    assert ok["description"].startswith("`required`")

    off = users_client.get("/openapi.json").json
    assert "securitySchemes" not in off["components"] and "security" not in off
    for methods in off["paths"].values():
        for operation in methods.values():
            assert "security" not in operation
            assert not {"401", "403"} & set(operation["responses"])
    assert off["paths"][USERS]["get"]["responses"]["200"]["headers"]["X-Authentication"]["description"].startswith(
        "`disabled`"
    )


def test_the_openapi_documents_are_valid_both_ways(users, users_client):
    from openapi_spec_validator import validate

    for client in (users, users_client):
        validate(client.get("/openapi.json").json)


def test_the_projects_document_says_the_owner_check_needs_users_read(projects_app_factory, shared_auth):
    from openapi_spec_validator import validate

    doc = projects_app_factory(ATLAS_AUTH_ISSUER=shared_auth.issuer).test_client().get("/openapi.json").json
    validate(doc)
    assert doc["paths"][PROJECTS]["post"]["security"] == [{"oauth2": ["projects:write"]}]
    assert "users:read" in doc["paths"][PROJECTS]["post"]["responses"]["403"]["description"]
    off = projects_app_factory().test_client().get("/openapi.json").json
    validate(off)
    assert "403" not in off["paths"][PROJECTS]["post"]["responses"]


# -- the auth service away ----------------------------------------------------------------------------


def test_no_keys_is_503_naming_the_dependency_and_the_probes_answer(users_app_factory):
    port = free_port()  # nothing listens there
    app = users_app_factory(ATLAS_AUTH_ISSUER=f"http://127.0.0.1:{port}")
    client = app.test_client()
    response = client.get(USERS, headers=bearer(_any_token()))
    assert response.status_code == 503, response.json
    error = response.json["error"]
    assert error["code"] == "auth_unavailable"
    assert error["details"] == {"dependency": "auth", "url": f"http://127.0.0.1:{port}/.well-known/jwks.json"}
    assert "refused" in error["message"].lower()
    assert response.headers["X-Authentication"] == "required"
    assert_401(client.get(USERS), "missing_token")  # no token: refused without asking for keys
    for path in PROBES:
        assert client.get(path).status_code == 200, path


def test_an_auth_service_that_does_not_answer_costs_a_bounded_wait(users_app_factory, auth_server):
    app = users_app_factory(ATLAS_AUTH_ISSUER=auth_server.issuer)
    auth_server.server.pause()  # accepts connections, answers nothing
    try:
        started = time.monotonic()
        response = app.test_client().get(USERS, headers=bearer(_any_token()))
        took = time.monotonic() - started
    finally:
        auth_server.server.resume()
    assert response.status_code == 503 and response.json["error"]["code"] == "auth_unavailable"
    assert "timed out" in response.json["error"]["message"].lower()
    assert 1.5 < took < 4  # the 2 s read timeout, once: no retry


def _any_token() -> str:
    """A well-formed access token whose kid names a key: only the keys can tell whether it is valid."""
    key = ECKey.generate_key("P-256")
    return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": key.thumbprint()}, {"sub": "x"}, key)


def test_a_service_starts_before_the_auth_service_and_uses_it_once_up(postgres_server, key_pems, tmp_path):
    """As deployed: users (a real server) starts and is ready while auth is not up; its API answers 503 with a
    token until auth answers, then checks tokens with the keys auth publishes (fetched lazily)."""
    from tests.services.conftest import running_auth

    name = "users_" + uuid.uuid4().hex[:10]
    db = postgres_server.create_database(name)
    migrate(db, "users")
    port = free_port()
    try:
        with ServiceProcess("users", env={**db, "ATLAS_AUTH_ISSUER": f"http://127.0.0.1:{port}"}) as users:
            assert requests.get(users.url("/readyz"), timeout=5).status_code == 200
            away = requests.get(users.url(USERS), headers=bearer(_any_token()), timeout=5)
            assert away.status_code == 503 and away.json()["error"]["code"] == "auth_unavailable"
            key_file = write_keys(str(tmp_path / "keys.pem"), key_pems["old"])
            with running_auth(postgres_server, key_file, port=port) as auth:
                token = auth.token("users:read")
                deadline = time.monotonic() + 15  # a failed fetch is retried after 5 s
                while True:
                    response = requests.get(users.url(USERS), headers=bearer(token), timeout=5)
                    if response.status_code != 503 or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
                assert response.status_code == 200, response.text
    finally:
        postgres_server.drop_database(name)


def test_keys_fetched_before_stay_in_use_while_auth_is_away(users_app_factory, auth_server):
    app = users_app_factory(ATLAS_AUTH_ISSUER=auth_server.issuer)
    keys = app.extensions["atlas"].bearer.keys
    keys.lifespan = 0  # every call wants a fresh set
    client = app.test_client()
    token = auth_server.token("users:read")
    assert client.get(USERS, headers=bearer(token)).status_code == 200
    auth_server.server.stop()
    assert client.get(USERS, headers=bearer(token)).status_code == 200  # the refresh failed: the old set serves
    assert client.get(USERS, headers=bearer(_any_token())).status_code == 401  # and still refuses what it should


def test_rotation_as_the_services_see_it(users_app_factory, auth_server, key_pems, tmp_path):
    app = users_app_factory(ATLAS_AUTH_ISSUER=auth_server.issuer)
    keys = app.extensions["atlas"].bearer.keys
    client = app.test_client()
    old_token = auth_server.token("users:read")
    assert client.get(USERS, headers=bearer(old_token)).status_code == 200  # the set [old] is cached now

    # The new key signs, both are published: a token with the new kid makes the service fetch the set again.
    keys.refetch_after = 0  # (by default at most once per 10 s)
    auth_server.restart(write_keys(str(tmp_path / "both.pem"), key_pems["new"], key_pems["old"]))
    new_token = auth_server.token("users:read")
    assert client.get(USERS, headers=bearer(new_token)).status_code == 200
    assert client.get(USERS, headers=bearer(old_token)).status_code == 200

    # The old key dropped: once the service's set is refreshed (lifespan), the old key's tokens are refused.
    auth_server.restart(write_keys(str(tmp_path / "new.pem"), key_pems["new"]))
    keys.lifespan = 0.2
    time.sleep(0.3)
    assert_401(client.get(USERS, headers=bearer(old_token)), why="signed with a key the auth service does not publish")
    assert client.get(USERS, headers=bearer(new_token)).status_code == 200


def test_an_unknown_kid_fetches_the_keys_at_most_once_per_interval(users_app_factory, shared_auth):
    app = users_app_factory(ATLAS_AUTH_ISSUER=shared_auth.issuer)
    keys = app.extensions["atlas"].bearer.keys
    downloads = []
    download = keys._download
    keys._download = lambda: (downloads.append(1), download())[1]
    client = app.test_client()
    assert client.get(USERS, headers=bearer(shared_auth.token("users:read"))).status_code == 200
    assert len(downloads) == 1  # the first token fetched the set
    for _ in range(5):
        assert client.get(USERS, headers=bearer(_any_token())).status_code == 401
    assert len(downloads) == 1  # unknown kids, but the set was fetched 0 s ago: no refetch
    keys.refetch_after = 0
    assert client.get(USERS, headers=bearer(_any_token())).status_code == 401
    assert len(downloads) == 2  # past the interval, an unknown kid fetches the set again


# -- the owner check with the caller's token ------------------------------------------------------------


@pytest.fixture
def users_checking_tokens(postgres_server, shared_auth):
    """A real users server checking the tokens of the shared auth server."""
    name = "users_" + uuid.uuid4().hex[:10]
    db = postgres_server.create_database(name)
    migrate(db, "users")
    env = {**db, "ATLAS_AUTH_ISSUER": shared_auth.issuer}
    with ServiceProcess("users", env=env, threads=4) as users:
        yield users
    postgres_server.drop_database(name)


def test_the_owner_check_passes_the_callers_token_on(projects_app_factory, users_checking_tokens, shared_auth):
    users = users_checking_tokens
    owner = requests.post(
        users.url(USERS),
        json={"email": "o@example.org", "name": "O"},
        headers=bearer(shared_auth.token("users:write")),
        timeout=5,
    ).json()
    projects = projects_app_factory(
        ATLAS_AUTH_ISSUER=shared_auth.issuer, USERS_SERVICE_URL=users.base_url
    ).test_client()

    full = shared_auth.token("projects:read projects:write users:read")
    created = projects.post(
        PROJECTS, json={"name": "P", "owner_id": owner["id"]}, headers={**bearer(full), "X-Request-ID": "fwd-1"}
    )
    assert created.status_code == 201, created.json
    assert created.headers["X-Owner-Check"] == "enabled" and created.headers["X-Authentication"] == "required"
    time.sleep(0.2)
    seen = [json.loads(line) for line in users.logs().splitlines() if '"fwd-1"' in line and "atlas.access" in line]
    assert [(line["path"], line["status"]) for line in seen] == [(f"{USERS}/{owner['id']}", 200)]

    missing = projects.post(PROJECTS, json={"name": "P", "owner_id": owner["id"] + 100}, headers=bearer(full))
    assert missing.status_code == 422 and missing.json["error"]["code"] == "owner_not_found"

    # Without users:read the owner cannot be read: a 403 naming the scope, nothing stored.
    no_users_read = shared_auth.token("projects:read projects:write")
    refused = projects.post(PROJECTS, json={"name": "Q", "owner_id": owner["id"]}, headers=bearer(no_users_read))
    assert_403(refused, "users:read")
    assert "owner check" in refused.json["error"]["message"]
    assert refused.json["error"]["details"] == {"required": "users:read", "dependency": "users", "url": users.base_url}
    assert projects.get(PROJECTS, headers=bearer(full)).json["total"] == 1
    # A change that does not touch the owner needs no users:read.
    renamed = projects.patch(f"{PROJECTS}/{created.json['id']}", json={"name": "R"}, headers=bearer(no_users_read))
    assert renamed.status_code == 200, renamed.json


def test_users_refusing_a_token_projects_accepted_is_a_502_saying_why(
    projects_app_factory, postgres_server, shared_auth
):
    name = "users_" + uuid.uuid4().hex[:10]
    db = postgres_server.create_database(name)
    migrate(db, "users")
    env = {**db, "ATLAS_AUTH_ISSUER": shared_auth.issuer, "ATLAS_AUTH_AUDIENCE": "elsewhere"}
    try:
        with ServiceProcess("users", env=env) as users:
            app = projects_app_factory(ATLAS_AUTH_ISSUER=shared_auth.issuer, USERS_SERVICE_URL=users.base_url)
            token = shared_auth.token("projects:write users:read")
            response = app.test_client().post(PROJECTS, json={"name": "P", "owner_id": 1}, headers=bearer(token))
    finally:
        postgres_server.drop_database(name)
    assert response.status_code == 502, response.json
    error = response.json["error"]
    assert error["code"] == "dependency_error"
    assert "refused the token" in error["message"] and "not meant for the audience elsewhere" in error["message"]
    assert error["details"]["dependency"] == "users"
