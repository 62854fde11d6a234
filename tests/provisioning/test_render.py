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

RENDER = "playbooks/render.yml"
PROFILE_SERVICES = {
    "full": {"users", "projects"},
    "users-only": {"users"},
    "projects-only": {"projects"},
    "ephemeral": {"users", "projects"},
}
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
    for service in ("users", "projects"):
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
    hosts = {"dev": "atlas.local", "test": "atlas-test.local", "prod": "atlas.example.com"}
    assert v["ingress"]["host"] == hosts[inventory]
    assert v["ingress"]["tls"]["enabled"] is (inventory == "prod")


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
    assert "Ingress" in kinds and "NetworkPolicy" in kinds


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
        moved = {s: (first["full"].values[s]["image"]["tag"], now[s]["image"]["tag"]) for s in ("users", "projects")}
        pytest.fail(f"second render changed {changed}; image tags before/after: {moved}")


def test_changed_setting_is_reported_and_rendered(tmp_path):
    extra = {"atlas_build_dir": str(tmp_path / "b"), "atlas_credentials_dir": str(tmp_path / "c")}
    assert run_playbook(RENDER, "dev", extra).rc == 0

    changed = run_playbook(RENDER, "dev", {**extra, "atlas_service_overrides": {"users": {"replicaCount": 3}}})

    assert changed.rc == 0
    assert changed.changed() == 2  # values.yaml and manifests.yaml
    with open(tmp_path / "b" / "values.yaml") as fh:
        assert yaml.safe_load(fh)["users"]["replicaCount"] == 3
