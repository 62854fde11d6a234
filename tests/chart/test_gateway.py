"""The entry through the Gateway API: a Gateway (or an existing one), an HTTPRoute per enabled service, the
SecurityPolicy that checks tokens at the gateway, a BackendTrafficPolicy per rate-limited service.

Every rendered object is validated against the published schemas (tests/support/gateway_schemas.py);
the CEL rules those schemas leave out are checked here for what the chart writes. What only a cluster
shows (Envoy Gateway accepting them, 401 and 429 at the gateway) is molecule's cluster mode.
"""

from __future__ import annotations

import pytest

from tests.support import gateway_schemas
from tests.support.chart import find, of_kind, render, render_error

pytestmark = pytest.mark.skipif(gateway_schemas.missing() is not None, reason=str(gateway_schemas.missing()))

GATEWAY = {"gateway.enabled": True, "ingress.enabled": False}
ISSUER = {"authentication.issuer": "https://id.example.com", "authentication.provider": ""}
SERVICES = ("projects", "users")
KINDS = ("Gateway", "HTTPRoute", "SecurityPolicy", "BackendTrafficPolicy")

# Value combinations as the profiles and environments use them: entry, which services, auth, rate limits.
CASES = {
    "gateway, both services": GATEWAY,
    "gateway, users only": {**GATEWAY, "projects.enabled": False},
    "gateway, projects only": {**GATEWAY, "users.enabled": False},
    "gateway, tokens required, external issuer": {**GATEWAY, **ISSUER, "authentication.required": True},
    "gateway, rate limits": {
        **GATEWAY,
        "users.rateLimit": {"enabled": True, "requests": 20, "unit": "Second"},
        "projects.rateLimit": {"enabled": True, "requests": 600, "unit": "Minute"},
    },
    "existing gateway in another namespace": {
        **GATEWAY, "gateway.create": False, "gateway.name": "shared", "gateway.namespace": "infra",
        "gateway.sectionName": "https", "gateway.host": "api.example.com",
    },
    "ingress": {},
}  # fmt: skip


def _gateway_kinds(values: dict) -> list[dict]:
    return [m for m in render(values) if m["kind"] in KINDS]


@pytest.mark.parametrize("case", CASES)
def test_every_object_is_valid_against_the_published_schemas(case):
    objects = gateway_schemas.gateway_objects(render(CASES[case]))
    assert bool(objects) == (case != "ingress")
    results = gateway_schemas.validate(objects)
    assert all(r["known"] for r in results), results
    assert [r for r in results if not r["ok"]] == []
    for obj in objects:
        _cel_rules_the_chart_relies_on(obj)


def _cel_rules_the_chart_relies_on(obj: dict) -> None:
    """The CRDs' CEL rules (not in the published schemas) for the fields the chart writes."""
    spec = obj["spec"]
    if obj["kind"] == "Gateway":
        for listener in spec["listeners"]:
            assert "tls" not in listener or listener["protocol"] != "HTTP", "HTTP listener with tls"
    if obj["kind"] == "HTTPRoute":
        for rule in spec["rules"]:
            for match in rule["matches"]:
                value = match["path"]["value"]
                assert value.startswith("/") and "//" not in value and "/./" not in value, value
            for ref in rule["backendRefs"]:
                assert "port" in ref, "a Service backendRef needs a port"
    if obj["kind"] in ("SecurityPolicy", "BackendTrafficPolicy"):
        assert len(spec["targetRefs"]) == 1 and "targetRef" not in spec and "targetSelectors" not in spec
        assert spec["targetRefs"][0]["group"] == "gateway.networking.k8s.io"
        assert spec["targetRefs"][0]["kind"] == "HTTPRoute"
    if obj["kind"] == "SecurityPolicy":
        for provider in spec["jwt"]["providers"]:
            assert ("remoteJWKS" in provider) != ("localJWKS" in provider)


def test_the_validator_refuses_what_the_cluster_would():
    """The schemas can fail: a broken route and a broken policy are refused, naming the field."""
    route = find(render(GATEWAY), "HTTPRoute", "atlas-users")
    broken_route = {**route, "spec": {**route["spec"], "rules": [{"matches": [{"path": {"type": "Prefix"}}]}]}}
    limits = {**GATEWAY, "users.rateLimit": {"enabled": True, "requests": 5, "unit": "Second"}}
    policy = find(render(limits), "BackendTrafficPolicy", "atlas-users")
    rule = {"limit": {"requests": "5", "unit": "Seconds"}}
    broken_policy = {**policy, "spec": {**policy["spec"], "rateLimit": {"type": "Local", "local": {"rules": [rule]}}}}
    results = gateway_schemas.validate([broken_route, broken_policy])
    assert [r["ok"] for r in results] == [False, False]
    assert any("type" in e for e in results[0]["errors"]), results[0]
    assert any("unit" in e or "requests" in e for e in results[1]["errors"]), results[1]


def test_one_route_per_enabled_service_with_its_paths_to_its_service():
    manifests = render(GATEWAY)
    (gateway,) = of_kind(manifests, "Gateway")
    assert gateway["metadata"]["name"] == "atlas"
    assert gateway["spec"]["gatewayClassName"] == "eg"
    (listener,) = gateway["spec"]["listeners"]
    assert (listener["protocol"], listener["port"], listener["hostname"]) == ("HTTP", 80, "atlas.local")
    assert listener["allowedRoutes"] == {"namespaces": {"from": "Same"}}
    routes = {r["metadata"]["name"]: r for r in of_kind(manifests, "HTTPRoute")}
    assert sorted(routes) == [f"atlas-{s}" for s in SERVICES]
    for service in SERVICES:
        spec = routes[f"atlas-{service}"]["spec"]
        assert spec["parentRefs"] == [{"name": "atlas"}]
        assert spec["hostnames"] == ["atlas.local"]
        (rule,) = spec["rules"]
        assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": f"/api/v1/{service}"}}]
        assert rule["backendRefs"] == [{"name": f"atlas-{service}", "port": 80}]
        find(manifests, "Service", f"atlas-{service}")  # the backend exists
    assert not of_kind(manifests, "Ingress"), "one entry at a time in this case"
    only = render({**GATEWAY, "projects.enabled": False})
    assert [r["metadata"]["name"] for r in of_kind(only, "HTTPRoute")] == ["atlas-users"]


def test_an_existing_gateway_is_attached_to_not_rendered():
    manifests = render(CASES["existing gateway in another namespace"])
    assert not of_kind(manifests, "Gateway")
    for route in of_kind(manifests, "HTTPRoute"):
        assert route["spec"]["parentRefs"] == [{"name": "shared", "namespace": "infra", "sectionName": "https"}]
        assert route["spec"]["hostnames"] == ["api.example.com"]


def test_the_gateway_checks_tokens_only_where_they_are_required():
    assert not of_kind(render(GATEWAY), "SecurityPolicy"), "off by default"
    manifests = render(CASES["gateway, tokens required, external issuer"])
    policies = {p["metadata"]["name"]: p for p in of_kind(manifests, "SecurityPolicy")}
    assert sorted(policies) == [f"atlas-{s}" for s in SERVICES]
    for service in SERVICES:
        spec = policies[f"atlas-{service}"]["spec"]
        assert spec["targetRefs"] == [
            {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": f"atlas-{service}"}
        ]
        (provider,) = spec["jwt"]["providers"]
        assert provider["issuer"] == "https://id.example.com"
        assert provider["audiences"] == ["atlas"]
        assert provider["remoteJWKS"] == {"uri": "https://id.example.com/.well-known/jwks.json"}


def test_rate_limits_per_service_only_where_asked():
    manifests = render(CASES["gateway, rate limits"])
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(manifests, "BackendTrafficPolicy")}
    assert policies["atlas-users"]["rateLimit"] == {
        "type": "Local", "local": {"rules": [{"limit": {"requests": 20, "unit": "Second"}}]}
    }  # fmt: skip
    assert policies["atlas-projects"]["rateLimit"]["local"]["rules"][0]["limit"] == {"requests": 600, "unit": "Minute"}
    assert not of_kind(render({**GATEWAY, "projects.enabled": False}), "BackendTrafficPolicy")


def test_the_ingress_stays_behind_its_setting():
    manifests = render()
    assert not [m for m in manifests if m["kind"] in KINDS]
    (ingress,) = of_kind(manifests, "Ingress")
    paths = {p["path"]: p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert paths == {f"/api/v1/{s}": f"atlas-{s}" for s in SERVICES}


def test_the_services_accept_the_gateways_proxies():
    manifests = render(GATEWAY)
    for service in SERVICES:
        policy = find(manifests, "NetworkPolicy", f"atlas-{service}")
        peers = [p for rule in policy["spec"]["ingress"] for p in rule["from"]]
        gateway_ns = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}}}
        assert gateway_ns in peers
        ingress_ns = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
        assert ingress_ns not in peers, "the ingress controller is not let in when the Ingress is off"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({**GATEWAY, "gateway.port": 0}, "gateway.port"),
        ({**GATEWAY, "gateway.host": "Atlas.Local"}, "gateway.host"),
        ({**GATEWAY, "users.rateLimit": {"enabled": True, "requests": 0, "unit": "Second"}}, "requests"),
        ({**GATEWAY, "users.rateLimit": {"enabled": True, "requests": 5, "unit": "Seconds"}}, "unit"),
        ({**GATEWAY, "users.entry": {"paths": ["api/v1/users"]}}, "paths"),
        ({"authentication.required": True, "authentication.provider": "", "authentication.issuer": ""}, "issuer"),
        ({"authentication.provider": "billing"}, "authentication.provider names billing"),
        ({"authentication.issuer": "ftp://id.example.com"}, "issuer"),
    ],
)
def test_bad_entry_and_authentication_values_are_refused(values, message):
    assert message in render_error(values)
