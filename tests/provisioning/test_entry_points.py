"""Every entry point finds the tools the tools role manages, also when its directory (~/.local/bin, where
it installs the pinned releases) is not on the user's PATH — as on macOS by default.

Real: make, ansible-playbook, the tools and release roles, kubernetes.core.helm, the real helm binary.
Stand-in: `minikube`, `kubectl` (tests/provisioning/standins) and `tilt` (a script that asks for minikube
the way Tilt does for `minikube docker-env`). No cluster: teardown's helm call reaches helm, which then
fails for want of a cluster — the point is that it is found and run.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.provisioning.ansible_run import REPO_ROOT, run_playbook
from tests.provisioning.standins import Standins


@pytest.fixture
def laptop(tmp_path):
    """The tools installed only into ~/.local/bin, which is not on PATH."""
    standins = Standins(tmp_path / "laptop")
    local_bin = standins.home / ".local" / "bin"
    local_bin.parent.mkdir(parents=True)
    standins.bin_dir.rename(local_bin)
    standins.bin_dir = local_bin
    yield standins
    standins.remove()


def _env(laptop: Standins) -> dict[str, str]:
    return {**laptop.env(), "PATH": "/usr/bin:/bin"}


def test_make_tilt_finds_minikube_in_the_tools_directory(laptop, tmp_path):
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "tilt").write_text("#!/bin/sh\ncommand -v minikube && minikube version --short\n")
    (stub / "tilt").chmod(0o755)
    env = {
        **{k: v for k, v in os.environ.items() if k != "ATLAS_TOOLS_BIN_DIR"},
        **_env(laptop),
        "PATH": f"{stub}:/usr/bin:/bin",
    }

    proc = subprocess.run(
        ["make", "--no-print-directory", "tilt"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{laptop.bin_dir}/minikube" in proc.stdout and "v1.35.0" in proc.stdout


def test_makefile_and_tools_role_name_the_same_directory():
    with open(f"{REPO_ROOT}/Makefile") as fh:
        assert "export ATLAS_TOOLS_BIN_DIR ?= $(HOME)/.local/bin" in fh.read()
    with open(f"{REPO_ROOT}/roles/tools/defaults/main.yml") as fh:
        default = fh.read()
    assert "lookup('ansible.builtin.env', 'ATLAS_TOOLS_BIN_DIR') or" in default
    assert "lookup('ansible.builtin.env', 'HOME') ~ '/.local/bin'" in default


@pytest.mark.parametrize("playbook", ["playbooks/teardown.yml", "playbooks/deploy.yml"])
def test_cluster_playbooks_run_the_helm_of_the_tools_directory(laptop, tmp_path, playbook):
    extra = {"atlas_build_dir": str(tmp_path / "build"), "atlas_credentials_dir": str(tmp_path / "cred")}
    run = run_playbook(playbook, "dev", extra, env=_env(laptop))

    messages = "\n".join(run.failure_messages())
    assert 'Failed to find required executable "helm"' not in messages
    tools = [
        t
        for p in run.report["plays"]
        for t in p["tasks"]
        if t["task"]["name"].endswith("Use the tools whose version fits")
    ]
    assert tools, run.tasks_run()
    found = {
        r["item"]["item"]["name"]: r.get("ansible_facts", {}).get("tools_bin")
        for r in tools[0]["hosts"]["localhost"]["results"]
    }
    assert found["helm"]["helm"] == f"{laptop.bin_dir}/helm"
    if playbook.endswith("teardown.yml"):  # past the tools, the uninstall asks the cluster first: there is none
        assert "the cluster of kube context atlas-dev does not answer (" in messages


def test_render_runs_the_helm_of_the_tools_directory(laptop, tmp_path):
    run = run_playbook("playbooks/render.yml", "dev", {"atlas_build_dir": str(tmp_path / "b")}, env=_env(laptop))

    assert run.rc == 0, run.failure_messages()
    assert (tmp_path / "b" / "manifests.yaml").stat().st_size > 0
