"""The auth service in the chart, as data: its signing key mounted from the Secret the playbooks make, the
issuer and keys wired into every service that checks tokens, and the NetworkPolicy paths that follows."""

from __future__ import annotations

import pytest
from atlas_common.config import AuthSettings

from tests.support.chart import find, of_kind, render, render_error

AUTH = {"auth.enabled": True, "auth.secretFiles": [
    {"env": "ATLAS_AUTH_SIGNING_KEY_FILE", "secretName": "atlas-auth-signing-key", "key": "signing-key.pem"}
]}  # fmt: skip
REQUIRED = {**AUTH, "authentication.required": True}
KEYS = "http://atlas-auth.atlas.svc.cluster.local:80/.well-known/jwks.json"


def _config(manifests: list[dict], service: str) -> dict:
    return find(manifests, "ConfigMap", f"atlas-{service}")["data"]


def test_off_by_default():
    manifests = render()
    assert not [m for m in manifests if m["metadata"]["name"].startswith("atlas-auth")]
    for service in ("users", "projects"):
        assert not [k for k in _config(manifests, service) if k.startswith("ATLAS_AUTH_")]


def test_the_signing_key_is_a_read_only_file_from_the_secret():
    manifests = render(AUTH)
    deployment = find(manifests, "Deployment", "atlas-auth")
    spec = deployment["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if "secret" in v]
    assert volume["secret"] == {
        "secretName": "atlas-auth-signing-key", "defaultMode": 0o440,
        "items": [{"key": "signing-key.pem", "path": "signing-key.pem"}],
    }  # fmt: skip
    (container,) = spec["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    assert mount["readOnly"] is True
    path = f"{mount['mountPath']}/signing-key.pem"
    # The migrate init container gets no key: it has no use for one.
    (init,) = spec["initContainers"]
    assert [m["name"] for m in init["volumeMounts"]] == ["tmp"]
    assert _config(manifests, "auth")["ATLAS_AUTH_SIGNING_KEY_FILE"] == path
    assert "ATLAS_AUTH_JWKS_URL" not in _config(manifests, "auth"), "the provider uses its own keys"
    assert _config(manifests, "auth")["ATLAS_AUTH_ISSUER"] == "http://atlas.local"


def test_an_enabled_auth_without_its_secret_is_refused():
    message = render_error({"auth.enabled": True})
    assert "auth.secretFiles[0].secretName is required" in message


def test_required_tokens_reach_every_service_that_checks_them():
    manifests = render(REQUIRED)
    for service in ("users", "projects"):
        data = _config(manifests, service)
        assert data["ATLAS_AUTH_ISSUER"] == "http://atlas.local"
        assert data["ATLAS_AUTH_AUDIENCE"] == "atlas"
        assert data["ATLAS_AUTH_JWKS_URL"] == KEYS
        assert "AUTH_SERVICE_URL" not in data  # the keys' URL, not a call of its API
    custom = render({**REQUIRED, "authentication.issuer": "https://id.example.com/", "authentication.audience": "x"})
    for service in ("auth", "users", "projects"):
        # No trailing slash: what the services make of the value (a base URL) and what the gateway compares.
        assert _config(custom, service)["ATLAS_AUTH_ISSUER"] == "https://id.example.com"
        assert _config(custom, service)["ATLAS_AUTH_AUDIENCE"] == "x"


@pytest.mark.parametrize("issuer", ["", "https://id.example.com/", "http://id.example.com:8443/realms/atlas"])
def test_the_gateway_and_the_services_expect_the_same_issuer(issuer):
    """Envoy compares `iss` as a string: the SecurityPolicy must say exactly what the services parse and auth
    signs with (AuthSettings from the rendered ConfigMaps)."""
    manifests = render({**REQUIRED, "gateway.enabled": True, "authentication.issuer": issuer})
    (provider,) = find(manifests, "SecurityPolicy", "atlas-users")["spec"]["jwt"]["providers"]
    for service in ("auth", "users", "projects"):
        settings = AuthSettings.from_env(_config(manifests, service))
        assert settings.issuer == provider["issuer"], service
        if service != "auth":
            assert settings.keys_url == provider["remoteJWKS"]["uri"], service
        assert [settings.audience] == provider["audiences"]


def test_the_issuer_follows_the_entry_host():
    values = {**REQUIRED, "gateway.enabled": True, "gateway.host": "api.example.com"}
    assert _config(render(values), "users")["ATLAS_AUTH_ISSUER"] == "http://api.example.com"


def test_keys_outside_the_release_are_reached_by_port():
    values = {"authentication.required": True, "authentication.provider": "",
              "authentication.issuer": "https://login.example.org"}  # fmt: skip
    for service in ("users", "projects"):
        policy = find(render(values), "NetworkPolicy", f"atlas-{service}")
        assert {"ports": [{"protocol": "TCP", "port": 443}]} in policy["spec"]["egress"]
    jwks = {**REQUIRED, "authentication.jwksUri": "http://keys.example.org:8080/jwks"}
    policy = find(render(jwks), "NetworkPolicy", "atlas-users")
    assert {"ports": [{"protocol": "TCP", "port": 8080}]} in policy["spec"]["egress"]
    inside = find(render(REQUIRED), "NetworkPolicy", "atlas-users")
    assert not [rule for rule in inside["spec"]["egress"] if "to" not in rule and rule["ports"][0]["port"] != 53]


def test_an_issuer_needs_a_host_to_default_to():
    anyhost = {**AUTH, "gateway.enabled": True, "gateway.host": ""}  # the routes answer any host
    message = render_error(anyhost)
    assert "authentication.issuer is required when the entry has no host (gateway.host is empty)" in message
    render({**anyhost, "authentication.issuer": "https://id.example.com"})


def test_network_paths_to_the_keys_and_nothing_more():
    manifests = render(REQUIRED)
    auth = find(manifests, "NetworkPolicy", "atlas-auth")
    callers = {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for rule in auth["spec"]["ingress"] for p in rule["from"] if "podSelector" in p
    }  # fmt: skip
    assert callers == {"users", "projects", "helm-test"}
    for service in ("users", "projects"):
        policy = find(manifests, "NetworkPolicy", f"atlas-{service}")
        reached = {
            p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
            for rule in policy["spec"]["egress"] for p in rule.get("to", []) if "podSelector" in p
        }  # fmt: skip
        assert "auth" in reached
    auth_reaches = {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for rule in auth["spec"]["egress"] for p in rule.get("to", []) if "podSelector" in p
    }  # fmt: skip
    assert auth_reaches == {"auth-postgresql"}
    # Tokens not required: nothing reaches auth but its own entry and the tests.
    loose = find(render(AUTH), "NetworkPolicy", "atlas-auth")
    assert {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for rule in loose["spec"]["ingress"]
        for p in rule["from"]
        if "podSelector" in p
    } == {"helm-test"}


def test_the_entry_routes_the_token_endpoint_and_keys_without_a_token_check():
    manifests = render({**REQUIRED, "gateway.enabled": True})
    route = find(manifests, "HTTPRoute", "atlas-auth")
    paths = [m["path"]["value"] for m in route["spec"]["rules"][0]["matches"]]
    assert paths == ["/oauth/token", "/.well-known/jwks.json", "/api/v1/clients"]
    assert sorted(p["metadata"]["name"] for p in of_kind(manifests, "SecurityPolicy")) == [
        "atlas-projects", "atlas-users"
    ]  # fmt: skip
    policy = find(manifests, "SecurityPolicy", "atlas-users")
    assert policy["spec"]["jwt"]["providers"][0]["remoteJWKS"]["uri"] == KEYS


@pytest.mark.parametrize("service", ["users", "projects", "auth"])
def test_a_new_service_is_data(service):
    """Every per-service object of a service comes from the shared templates, auth's included."""
    manifests = render(AUTH)
    for kind in ("Deployment", "Service", "ConfigMap", "ServiceAccount", "NetworkPolicy", "StatefulSet"):
        name = f"atlas-{service}-postgresql" if kind == "StatefulSet" else f"atlas-{service}"
        find(manifests, kind, name)
