"""Bad settings stop render.yml before anything is written or touches a cluster, naming the setting.

Each case is one real ansible-playbook run of playbooks/render.yml with -e overrides (or a bad inventory);
the assertion is on the message the user sees.
"""

from __future__ import annotations

import os

import pytest

from tests.provisioning.ansible_run import REPO_ROOT, run_playbook

RENDER = "playbooks/render.yml"


def _svc(service: str, **settings) -> dict:
    return {"atlas_service_overrides": {service: settings}}


CASES = {
    "unknown profile": (
        {"atlas_profile": "everything"},
        'atlas_profile: "everything" is not a profile; allowed: ephemeral, full, projects-only, users-only',
    ),
    "unknown service in overrides": (
        {"atlas_service_overrides": {"billing": {"replicas": 1}}},
        "atlas_service_overrides: unknown service billing; known services: projects, users",
    ),
    "profile naming an unknown service": (
        {"atlas_profiles": {"mine": {"services": ["users", "billing"], "persistence": True}}, "atlas_profile": "mine"},
        "atlas_profiles.mine: must be {services: [a non-empty list of projects, users]",
    ),
    "profile without persistence flag": (
        {"atlas_profiles": {"mine": {"services": ["users"]}}, "atlas_profile": "mine"},
        "atlas_profiles.mine: must be {services:",
    ),
    "negative replicas": (_svc("users", replicas=-1), "users.replicas: must be an integer from 0 to 50, got -1"),
    "too many replicas": (
        _svc("projects", replicas=500),
        "projects.replicas: must be an integer from 0 to 50, got 500",
    ),
    "replicas not a number": (_svc("users", replicas="two"), "users: argument 'replicas' is of type"),
    "malformed memory size": (
        _svc("users", resources={"limits": {"memory": "256MB"}}),
        "users.resources.limits.memory: '256MB' is not a memory quantity (e.g. 128Mi, 1Gi)",
    ),
    "malformed cpu": (
        _svc("projects", resources={"requests": {"cpu": "fast"}}),
        "projects.resources.requests.cpu: 'fast' is not a CPU quantity",
    ),
    "malformed persistence size": (
        _svc("users", database={"persistence_size": "lots"}),
        "users.database.persistence_size: 'lots' is not a storage quantity",
    ),
    "bad image repository": (
        _svc("users", image={"repository": "Atlas/Users!"}),
        "users.image.repository: 'Atlas/Users!' is not an image repository",
    ),
    "bad image tag": (_svc("projects", image={"tag": "v1 beta"}), "projects.image.tag: 'v1 beta' is not an image tag"),
    "bad registry prefix": (
        {"atlas_image_registry": "https://registry.example.com"},
        'atlas_image_registry: "https://registry.example.com" is not a registry prefix',
    ),
    "unknown log level": (
        _svc("users", config={"log_level": "TRACE"}),
        "value of log_level must be one of: DEBUG, INFO, WARNING, ERROR, got: TRACE",
    ),
    "unknown setting key": (_svc("users", replica=2), "users: unknown setting replica; allowed: autoscaling, config,"),
    "pool size out of range": (
        _svc("users", config={"pool_size": 0}),
        "users.config.pool_size: must be an integer from 1 to 100, got 0",
    ),
    "autoscaling min above max": (
        _svc("projects", autoscaling={"min_replicas": 6, "max_replicas": 3}),
        "projects.autoscaling: min_replicas (6) must not exceed max_replicas (3)",
    ),
    "bad namespace": (
        {"atlas_namespace": "Atlas_NS"},
        'atlas_namespace: "Atlas_NS" is not a lowercase DNS label',
    ),
    "release name too long": (
        {"atlas_release_name": "a" * 31},
        'atlas_release_name: "' + "a" * 31 + "\" is not a lowercase DNS label (a-z, 0-9, '-', at most 30 characters)",
    ),
    "unknown cluster kind": (
        {"atlas_cluster": "kind"},
        "value of atlas_cluster must be one of: minikube, existing, got: kind",
    ),
    "existing cluster without context": (
        {"atlas_cluster": "existing", "atlas_build_images": False, "atlas_kube_context": ""},
        "atlas_kube_context: required when atlas_cluster is existing",
    ),
    "unknown password source": (
        {"atlas_db_password_source": "plaintext"},
        "value of atlas_db_password_source must be one of: generate, vault, existing, got: plaintext",
    ),
    "bad ingress host": (
        {"atlas_ingress_host": "not a host"},
        'atlas_ingress_host: "not a host" is not a lowercase DNS name',
    ),
    "overrides not a mapping": (
        {"atlas_service_overrides": ["users"]},
        "argument 'atlas_service_overrides' is of type list",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_setting_stops_render_with_a_clear_message(case, tmp_path):
    overrides, expected = CASES[case]
    build = tmp_path / "build"
    run = run_playbook(RENDER, "dev", {**overrides, "atlas_build_dir": str(build)})

    assert run.rc != 0, f"{case}: render.yml accepted the bad input"
    messages = "\n".join(run.failure_messages())
    assert expected in messages, f"{case}: expected {expected!r} in:\n{messages}"
    # Validation comes first: nothing was written.
    assert not build.exists()


def test_missing_required_setting_in_an_inventory_is_named(tmp_path):
    """A bad inventory: atlas_env set to null (a missing value) is refused by the argument spec."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    with open(os.path.join(REPO_ROOT, "inventories", "dev", "hosts.yml")) as src:
        (inventory / "hosts.yml").write_text(src.read())
    (inventory / "group_vars" / "atlas.yml").write_text("atlas_env:\natlas_profile: full\n")

    run = run_playbook(RENDER, inventory_path=str(inventory), extra_vars={"atlas_build_dir": str(tmp_path / "b")})

    assert run.rc != 0
    messages = "\n".join(run.failure_messages())
    assert "atlas_env" in messages, messages
