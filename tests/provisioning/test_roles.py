"""Structural promises of the roles that a rendering test cannot see: documented inputs, all release values
through one file (so kubernetes.core.helm's change detection is truthful without helm-diff), secrets no_log."""

from __future__ import annotations

import glob
import os

import pytest
import yaml

from tests.provisioning.ansible_run import REPO_ROOT, run_playbook

ROLES = sorted(os.path.basename(p) for p in glob.glob(f"{REPO_ROOT}/roles/*") if os.path.isdir(p))


def _tasks(role: str) -> list[dict]:
    found = []
    for path in sorted(glob.glob(f"{REPO_ROOT}/roles/{role}/tasks/*.yml")):
        with open(path) as fh:
            for task in yaml.safe_load(fh) or []:
                found += [task, *task.get("block", []), *task.get("rescue", []), *task.get("always", [])]
    return found


@pytest.mark.parametrize("role", ROLES)
def test_role_documents_its_inputs(role):
    with open(f"{REPO_ROOT}/roles/{role}/meta/argument_specs.yml") as fh:
        specs = yaml.safe_load(fh)["argument_specs"]
    assert specs["main"]["options"], role
    with open(f"{REPO_ROOT}/roles/{role}/defaults/main.yml") as fh:
        defaults = yaml.safe_load(fh) or {}
    # Every default the role defines is also declared in its argument spec.
    assert set(defaults) <= set(specs["main"]["options"]), set(defaults) - set(specs["main"]["options"])


def test_release_passes_every_value_through_the_values_file():
    helm_tasks = [t["kubernetes.core.helm"] for t in _tasks("release") if "kubernetes.core.helm" in t]
    install = [t for t in helm_tasks if "chart_ref" in t]
    assert len(install) == 1
    assert install[0]["values_files"] and not {"values", "release_values", "set_values"} & set(install[0])
    assert install[0]["wait"] and install[0]["atomic"] and install[0]["create_namespace"]


def test_tasks_that_handle_passwords_are_no_log():
    for role in ROLES:
        for task in _tasks(role):
            if "password" in yaml.safe_dump(task).lower() and "kubernetes.core.k8s" in task:
                assert task.get("no_log") is True, task["name"]


def test_prod_deploy_with_the_example_vault_stops_before_the_cluster(tmp_path):
    """prod takes passwords only from ansible-vault: the shipped placeholder is refused by name."""
    with open(f"{REPO_ROOT}/inventories/prod/group_vars/all/vault.yml.example") as fh:
        example = yaml.safe_load(fh)

    # The monitoring stack (on in prod) checks its own vaulted password first: tests/provisioning/test_observability.py.
    extra = {**example, "atlas_build_dir": str(tmp_path), "atlas_observability": {"enabled": False}}
    run = run_playbook("playbooks/deploy.yml", "prod", extra)

    assert run.rc != 0
    messages = run.failure_messages()
    assert any(m.startswith("atlas_db_passwords.users: missing or still the example placeholder") for m in messages)
    assert "Create the namespace" not in run.tasks_run()
