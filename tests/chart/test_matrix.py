"""helm template over the whole toggle matrix: exact resource sets, storage, wiring, routes, policies."""

from __future__ import annotations

import pytest

from tests.chart.matrix import COMBOS, Combo
from tests.support.chart import find, of_kind, render, resource_ids

BY_ID = pytest.mark.parametrize("combo", COMBOS, ids=lambda c: c.id)


def component_selector(component: str) -> dict:
    return {
        "matchLabels": {
            "app.kubernetes.io/name": "atlas",
            "app.kubernetes.io/instance": "atlas",
            "app.kubernetes.io/component": component,
        }
    }


@BY_ID
def test_exact_resource_set(combo: Combo) -> None:
    assert resource_ids(render(combo.values())) == combo.expected_resources()


@BY_ID
def test_database_storage_is_claim_or_emptydir(combo: Combo) -> None:
    manifests = render(combo.values())
    statefulsets = of_kind(manifests, "StatefulSet")
    assert len(statefulsets) == (len(combo.enabled) if combo.postgresql else 0)
    for sts in statefulsets:
        volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
        claims = sts["spec"].get("volumeClaimTemplates", [])
        if combo.persistence:
            assert [c["metadata"]["name"] for c in claims] == ["data"]
            assert claims[0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
            assert claims[0]["spec"]["accessModes"] == ["ReadWriteOnce"]
            assert "data" not in volumes
        else:
            assert claims == []
            assert volumes["data"] == {"name": "data", "emptyDir": {}}


@pytest.mark.parametrize("combo", [c for c in COMBOS if c.projects], ids=lambda c: c.id)
def test_users_service_url_wired_only_with_users(combo: Combo) -> None:
    data = find(render(combo.values()), "ConfigMap", "atlas-projects")["data"]
    if combo.users:
        assert data["USERS_SERVICE_URL"] == "http://atlas-users:80"
    else:
        assert "USERS_SERVICE_URL" not in data
    assert data["USERS_SERVICE_TIMEOUT"] == "2"
    assert data["USERS_SERVICE_RETRIES"] == "2"


@BY_ID
def test_database_host_follows_the_database_toggle(combo: Combo) -> None:
    manifests = render(combo.values())
    for name in combo.enabled:
        data = find(manifests, "ConfigMap", f"atlas-{name}")["data"]
        if combo.postgresql:
            assert (data["PGHOST"], data["PGPORT"]) == (f"atlas-{name}-postgresql", "5432")
        else:
            assert (data["PGHOST"], data["PGPORT"]) == ("db.example.test", "5432")
        assert (data["PGDATABASE"], data["PGUSER"]) == (name, name)


@BY_ID
def test_ingress_routes_only_enabled_services(combo: Combo) -> None:
    ingresses = of_kind(render(combo.values()), "Ingress")
    if not combo.enabled:
        assert ingresses == []
        return
    (ingress,) = ingresses
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "atlas.local"
    routes = {
        p["path"]: (p["pathType"], p["backend"]["service"]["name"], p["backend"]["service"]["port"])
        for p in rule["http"]["paths"]
    }
    assert routes == {f"/api/v1/{n}": ("Prefix", f"atlas-{n}", {"name": "http"}) for n in combo.enabled}


@BY_ID
def test_network_policies_select_the_right_peers(combo: Combo) -> None:
    manifests = render(combo.values())
    for name in combo.enabled:
        policy = find(manifests, "NetworkPolicy", f"atlas-{name}")["spec"]
        assert policy["podSelector"] == component_selector(name)
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        (rule,) = policy["ingress"]
        expected_from = [{"podSelector": component_selector("helm-test")}]
        if name == "users" and combo.projects:
            expected_from.append({"podSelector": component_selector("projects")})
        expected_from.append({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}})
        assert rule["from"] == expected_from
        assert rule["ports"] == [{"protocol": "TCP", "port": "http"}]

        egress_to = [tuple(r.get("to", [])) for r in policy["egress"]]
        egress_ports = [r["ports"] for r in policy["egress"]]
        assert egress_ports[0] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
        if combo.postgresql:
            assert egress_to[1] == ({"podSelector": component_selector(f"{name}-postgresql")},)
        else:
            assert egress_to[1] == ()
        assert egress_ports[1] == [{"protocol": "TCP", "port": 5432}]
        calls_users = name == "projects" and combo.users
        assert len(policy["egress"]) == (3 if calls_users else 2)
        if calls_users:
            assert egress_to[2] == ({"podSelector": component_selector("users")},)
            assert egress_ports[2] == [{"protocol": "TCP", "port": 8080}]

        if combo.postgresql:
            db_policy = find(manifests, "NetworkPolicy", f"atlas-{name}-postgresql")["spec"]
            assert db_policy["podSelector"] == component_selector(f"{name}-postgresql")
            assert db_policy["ingress"] == [
                {"from": [{"podSelector": component_selector(name)}], "ports": [{"protocol": "TCP", "port": 5432}]}
            ]
            # Both types listed and no egress rule: the database sends nothing.
            assert db_policy["policyTypes"] == ["Ingress", "Egress"]
            assert "egress" not in db_policy


@BY_ID
def test_every_selector_matches_its_pods(combo: Combo) -> None:
    """Services, policies and budgets select pods that exist; a label drift would orphan them."""
    manifests = render(combo.values())
    pod_labels = [
        w["spec"]["template"]["metadata"]["labels"] for w in manifests if w["kind"] in ("Deployment", "StatefulSet")
    ]
    pod_labels += [p["metadata"]["labels"] for p in of_kind(manifests, "Pod")]
    for doc in manifests:
        if doc["kind"] == "Service":
            selector = doc["spec"]["selector"]
        elif doc["kind"] == "NetworkPolicy":
            selector = doc["spec"]["podSelector"]["matchLabels"]
        else:
            continue
        matches = [labels for labels in pod_labels if selector.items() <= labels.items()]
        assert matches, f"{doc['kind']}/{doc['metadata']['name']} selects no pod"
