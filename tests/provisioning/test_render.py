"""playbooks/render.yml for every inventory x profile: the values file Ansible writes, and the manifests the
real chart makes from it through the real helm binary (helm template, run by the values role). No cluster needed.

Each inventory is rendered once per session for all four profiles (into a temporary build dir) and then once
more, which must change nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.provisioning.ansible_run import INVENTORIES, PROFILES, REPO_ROOT, PlaybookRun, run_playbook
from tests.support import gateway_schemas

RENDER = "playbooks/render.yml"
# Written down here, not read from group_vars/all/profiles.yml, so that a wrong profile fails instead of being copied.
PROFILE_SERVICES = {
    "full": {"auth", "users", "projects"},
    "users-only": {"users"},
    "projects-only": {"projects"},
    "ephemeral": {"auth", "users", "projects"},
}
TOKENS_REQUIRED = {"full": True, "users-only": False, "projects-only": False, "ephemeral": True}
SERVICES = ("auth", "users", "projects")
HOSTS = {"dev": "atlas.local", "test": "atlas-test.local", "prod": "atlas.example.com"}
ISSUERS = {"dev": "http://atlas.local", "test": "http://atlas-test.local", "prod": "https://atlas.example.com"}
# The rate limits of group_vars/all/services.yml (README, "Profiles and inventories").
RATE_LIMITS = {"auth": (20, "Second"), "users": (200, "Second"), "projects": (100, "Second")}
COMBINATIONS = [(inv, prof) for inv in INVENTORIES for prof in PROFILES]


def _chart_label() -> str:
    with open(os.path.join(REPO_ROOT, "charts", "atlas", "Chart.yaml")) as fh:
        chart = yaml.safe_load(fh)
    return f"{chart['name']}-{chart['version']}"


def _chart_defaults() -> dict:
    with open(os.path.join(REPO_ROOT, "charts", "atlas", "values.yaml")) as fh:
        return yaml.safe_load(fh)


def _overlay(base: dict, over: dict) -> dict:
    """helm's merge of a values file onto the chart's defaults (maps merge, everything else replaces)."""
    merged = dict(base)
    for key, value in over.items():
        merged[key] = (
            _overlay(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        )
    return merged


@dataclass
class Rendered:
    inventory: str
    profile: str
    build: Path
    credentials: Path
    first_changed: int
    written: dict  # the values file: only what the settings set
    manifests: list[dict]

    @property
    def values(self) -> dict:
        """What the chart sees: its defaults with the written values on top."""
        return _overlay(_chart_defaults(), self.written)

    def objects(self, kind: str) -> dict[str, dict]:
        return {doc["metadata"]["name"]: doc for doc in self.manifests if doc["kind"] == kind}


def _profile_hosts(root: Path, inventory: str) -> Path:
    """An extra inventory source: one host per profile, each with its own build dir, so one ansible-playbook
    run renders all four profiles of an inventory (the host variable atlas_profile plays the part of
    `-e atlas_profile=...`; everything else comes from inventories/<inventory>)."""
    hosts = {
        f"render-{profile}": {
            "ansible_connection": "local",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "atlas_profile": profile,
            "atlas_build_dir": str(root / inventory / profile),
            "atlas_credentials_dir": str(root / "credentials" / inventory),
        }
        for profile in PROFILES
    }
    path = root / f"{inventory}-profiles.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"atlas": {"hosts": hosts}}}}))
    return path


def render_inventory(root: Path, inventory: str) -> PlaybookRun:
    return run_playbook(RENDER, inventory, extra_inventory=str(_profile_hosts(root, inventory)), limit="render-*")


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """Render lazily, once per inventory (all profiles), shared by every test of the session (per xdist worker)."""
    root = tmp_path_factory.mktemp("render")
    cache: dict[str, dict[str, Rendered]] = {}

    def get(inventory: str, profile: str) -> Rendered:
        if inventory not in cache:
            run = render_inventory(root, inventory)
            assert run.rc == 0, run.failure_messages() or run.stderr
            cache[inventory] = {}
            for prof in PROFILES:
                build = root / inventory / prof
                with open(build / "values.yaml") as fh:
                    values = yaml.safe_load(fh)
                with open(build / "manifests.yaml") as fh:
                    manifests = [doc for doc in yaml.safe_load_all(fh) if doc]
                cache[inventory][prof] = Rendered(
                    inventory,
                    prof,
                    build,
                    root / "credentials" / inventory,
                    run.changed(f"render-{prof}"),
                    values,
                    manifests,
                )
        return cache[inventory][profile]

    return get


@pytest.mark.parametrize(("inventory", "profile"), COMBINATIONS)
def test_values_follow_the_profile(rendered, inventory, profile):
    r = rendered(inventory, profile)
    v = r.values
    enabled = PROFILE_SERVICES[profile]
    for service in SERVICES:
        block = v[service]
        assert block["enabled"] is (service in enabled)
        if service not in enabled:
            continue
        # Content-hash tag unless an inventory pins one; never "latest".
        assert re.fullmatch(r"[0-9a-f]{12}", block["image"]["tag"]), block["image"]
        assert block["image"]["pullPolicy"] == "IfNotPresent"
        # prod scales with the autoscaler (from 2 replicas), so it sets no replicaCount the HPA would ignore.
        assert ("replicaCount" in r.written[service]) is False
        assert block["autoscaling"]["enabled"] is (inventory == "prod")
        assert block["autoscaling"]["minReplicas"] == 2
        assert block["podDisruptionBudget"]["enabled"] is (inventory == "prod")
        assert block["postgresql"]["persistence"]["enabled"] is (profile != "ephemeral")
        # The chart only ever learns the Secret's name; the password itself is never in the values.
        assert block["postgresql"]["auth"]["existingSecret"] == f"atlas-{service}-db"
        assert block["postgresql"]["auth"]["password"] == ""
    expected_repo = "registry.example.com/atlas/users" if inventory == "prod" else "atlas/users"
    assert v["users"]["image"]["repository"] == expected_repo
    assert v["projects"]["usersService"]["retries"] == 2
    # The entry: the Gateway API everywhere (prod attaches to its platform's Gateway), the Ingress's settings kept
    # (atlas_entry: ingress turns it on instead).
    assert v["gateway"]["enabled"] is True and v["ingress"]["enabled"] is False
    assert v["gateway"]["host"] == v["ingress"]["host"] == HOSTS[inventory]
    assert v["gateway"]["create"] is (inventory != "prod")
    assert v["ingress"]["tls"]["enabled"] is (inventory == "prod")
    # Tokens: required where the profile says, issued for the entry's URL (prod: its HTTPS one).
    assert v["authentication"]["required"] is TOKENS_REQUIRED[profile]
    assert v["authentication"]["issuer"] == ISSUERS[inventory]
    if "auth" in enabled:
        assert v["auth"]["secretFiles"] == [
            {"env": "ATLAS_AUTH_SIGNING_KEY_FILE", "secretName": "atlas-auth-signing-key", "key": "signing-key.pem"}
        ]
    else:
        assert "secretFiles" not in r.written["auth"]


@pytest.mark.parametrize(("inventory", "profile"), COMBINATIONS)
def test_manifests_come_from_the_chart(rendered, inventory, profile):
    r = rendered(inventory, profile)
    enabled = PROFILE_SERVICES[profile]
    assert {doc["metadata"].get("labels", {}).get("helm.sh/chart") for doc in r.manifests} >= {_chart_label()}

    deployments = r.objects("Deployment")
    assert set(deployments) == {f"atlas-{s}" for s in enabled}
    for name, dep in deployments.items():
        service = name.removeprefix("atlas-")
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == f"{r.values[service]['image']['repository']}:{r.values[service]['image']['tag']}"

    statefulsets = r.objects("StatefulSet")
    assert set(statefulsets) == {f"atlas-{s}-postgresql" for s in enabled}
    for sts in statefulsets.values():
        assert ("volumeClaimTemplates" in sts["spec"]) is (profile != "ephemeral")

    # Env wiring: projects calls users only when users is installed.
    if "projects" in enabled:
        config = r.objects("ConfigMap")["atlas-projects"]["data"]
        assert ("USERS_SERVICE_URL" in config) is ("users" in enabled)

    kinds = {doc["kind"] for doc in r.manifests}
    assert (
        {"HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
        if inventory == "prod"
        else not ({"HorizontalPodAutoscaler", "PodDisruptionBudget"} & kinds)
    )
    assert "Ingress" not in kinds and {"HTTPRoute", "NetworkPolicy"} <= kinds
    assert ("Gateway" in kinds) is (inventory != "prod")


@pytest.mark.parametrize(("inventory", "profile"), COMBINATIONS)
def test_render_writes_no_secret(rendered, inventory, profile):
    r = rendered(inventory, profile)
    # No password was generated for a render, and no Secret with data is part of the manifests.
    assert not r.credentials.exists()
    assert not [doc for doc in r.manifests if doc["kind"] == "Secret"]
    assert sorted(os.listdir(r.build)) == ["manifests.yaml", "target.yaml", "values.yaml"]


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_second_render_changes_nothing(rendered, inventory):
    first = {profile: rendered(inventory, profile) for profile in PROFILES}
    assert all(r.first_changed > 0 for r in first.values())  # the first run wrote the files
    again = render_inventory(first["full"].build.parent.parent, inventory)
    assert again.rc == 0
    changed = {p: again.changed(f"render-{p}") for p in PROFILES}
    if changed != dict.fromkeys(PROFILES, 0):
        # The usual cause is not the playbook: a file under services/ changed between the two runs.
        with open(first["full"].build / "values.yaml") as fh:
            now = yaml.safe_load(fh)
        moved = {s: (first["full"].values[s]["image"]["tag"], now[s]["image"]["tag"]) for s in SERVICES}
        pytest.fail(f"second render changed {changed}; image tags before/after: {moved}")


def test_changed_setting_is_reported_and_rendered(tmp_path):
    extra = {"atlas_build_dir": str(tmp_path / "b"), "atlas_credentials_dir": str(tmp_path / "c")}
    assert run_playbook(RENDER, "dev", extra).rc == 0

    changed = run_playbook(RENDER, "dev", {**extra, "atlas_service_overrides": {"users": {"replicaCount": 3}}})

    assert changed.rc == 0
    assert changed.changed() == 2  # values.yaml and manifests.yaml
    with open(tmp_path / "b" / "values.yaml") as fh:
        assert yaml.safe_load(fh)["users"]["replicaCount"] == 3


# -- the entry and the tokens, per inventory and profile ---------------------------------------------------------


@pytest.mark.parametrize(("inventory", "profile"), COMBINATIONS)
def test_the_gateway_routes_exactly_the_enabled_services(rendered, inventory, profile):
    r = rendered(inventory, profile)
    enabled = PROFILE_SERVICES[profile]
    gateways = r.objects("Gateway")
    if inventory == "prod":  # attached to the platform's Gateway (inventories/prod: atlas_gateway)
        assert gateways == {}
        parent = {"name": "public-gateway", "namespace": "envoy-gateway-system", "sectionName": "https"}
    else:
        (listener,) = gateways["atlas"]["spec"]["listeners"]
        assert gateways["atlas"]["spec"]["gatewayClassName"] == "eg"
        assert (listener["protocol"], listener["port"], listener["hostname"]) == ("HTTP", 80, HOSTS[inventory])
        parent = {"name": "atlas"}
    routes = r.objects("HTTPRoute")
    assert set(routes) == {f"atlas-{s}" for s in enabled}
    chart = _chart_defaults()
    for name, route in routes.items():
        service = name.removeprefix("atlas-")
        assert route["spec"]["parentRefs"] == [parent]
        assert route["spec"]["hostnames"] == [HOSTS[inventory]]
        (rule,) = route["spec"]["rules"]
        assert [m["path"]["value"] for m in rule["matches"]] == chart[service]["entry"]["paths"]
        assert rule["backendRefs"] == [{"name": name, "port": 80}]
    # The services let the gateway's proxies in, and only them (no ingress controller).
    for service in enabled:
        peers = [p for rule in r.objects("NetworkPolicy")[f"atlas-{service}"]["spec"]["ingress"] for p in rule["from"]]
        assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}}} in peers
        assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} not in peers


@pytest.mark.parametrize(("inventory", "profile"), COMBINATIONS)
def test_tokens_are_checked_at_the_gateway_where_the_profile_requires_them(rendered, inventory, profile):
    r = rendered(inventory, profile)
    enabled = PROFILE_SERVICES[profile]
    policies = r.objects("SecurityPolicy")
    checked = {s for s in enabled if s != "auth"} if TOKENS_REQUIRED[profile] else set()
    assert set(policies) == {f"atlas-{s}" for s in checked}
    for name, policy in policies.items():
        assert policy["spec"]["targetRefs"] == [
            {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": name}
        ]
        (provider,) = policy["spec"]["jwt"]["providers"]
        assert provider["issuer"] == ISSUERS[inventory]
        assert provider["audiences"] == ["atlas"]
        # auth's own keys, inside the cluster (not through the entry's public URL).
        assert provider["remoteJWKS"]["uri"] == "http://atlas-auth.atlas.svc.cluster.local:80/.well-known/jwks.json"
    # ...and again by the services themselves, which auth's tokens are issued for.
    for service in enabled:
        data = r.objects("ConfigMap")[f"atlas-{service}"]["data"]
        assert (data.get("ATLAS_AUTH_ISSUER") == ISSUERS[inventory]) is (service in checked or service == "auth")
    if "auth" in enabled:
        deployment = r.objects("Deployment")["atlas-auth"]
        volumes = [
            v["secret"]["secretName"] for v in deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v
        ]
        assert "atlas-auth-signing-key" in volumes


@pytest.mark.parametrize(("inventory", "profile"), COMBINATIONS)
def test_each_enabled_service_has_its_rate_limit(rendered, inventory, profile):
    r = rendered(inventory, profile)
    policies = r.objects("BackendTrafficPolicy")
    assert set(policies) == {f"atlas-{s}" for s in PROFILE_SERVICES[profile]}
    for name, policy in policies.items():
        requests, unit = RATE_LIMITS[name.removeprefix("atlas-")]
        assert policy["spec"]["targetRefs"] == [
            {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": name}
        ]
        assert policy["spec"]["rateLimit"]["local"]["rules"] == [{"limit": {"requests": requests, "unit": unit}}]


@pytest.mark.skipif(gateway_schemas.missing() is not None, reason=str(gateway_schemas.missing()))
@pytest.mark.parametrize(("inventory", "profile"), COMBINATIONS)
def test_the_entry_is_valid_against_the_published_schemas(rendered, inventory, profile):
    objects = gateway_schemas.gateway_objects(rendered(inventory, profile).manifests)
    results = gateway_schemas.validate(objects)
    assert results and all(res["known"] for res in results), results
    assert [res for res in results if not res["ok"]] == []


def test_the_ingress_entry_renders_the_ingress_and_no_gateway(tmp_path):
    """atlas_entry: ingress (a cluster that runs an ingress controller): one Ingress for the enabled services; the
    services still check tokens (the profile's), the rate limits are not kept (nothing renders them), and render.yml
    says so."""
    run = run_playbook(RENDER, "dev", {"atlas_entry": "ingress", "atlas_build_dir": str(tmp_path / "b")})
    assert run.rc == 0, run.failure_messages()
    with open(tmp_path / "b" / "manifests.yaml") as fh:
        manifests = [d for d in yaml.safe_load_all(fh) if d]
    kinds = {d["kind"] for d in manifests}
    assert "Ingress" in kinds and not kinds & {"Gateway", "HTTPRoute", "SecurityPolicy", "BackendTrafficPolicy"}
    [ingress] = [d for d in manifests if d["kind"] == "Ingress"]
    paths = {p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    chart = _chart_defaults()
    assert paths == {p for s in PROFILE_SERVICES["full"] for p in chart[s]["entry"]["paths"]}
    config = next(d for d in manifests if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "atlas-users")["data"]
    assert config["ATLAS_AUTH_ISSUER"] == "http://atlas.local"
    [said] = run.results("Say which rate limits the Ingress does not keep")
    assert said["msg"].startswith(
        "atlas_entry is ingress: the rate limits of auth, projects, users (rateLimit.enabled)"
    )


def test_an_https_ingress_issues_https_tokens(tmp_path):
    extra = {"atlas_entry": "ingress", "atlas_ingress_tls_secret": "atlas-tls", "atlas_build_dir": str(tmp_path / "b")}
    run = run_playbook(RENDER, "dev", extra)
    assert run.rc == 0, run.failure_messages()
    values = yaml.safe_load((tmp_path / "b" / "values.yaml").read_text())
    assert values["authentication"]["issuer"] == "https://atlas.local"
