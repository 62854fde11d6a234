"""The Molecule mode decision (molecule/shared/atlas_mode.py) and `make molecule-cluster` without a cluster.

The branching is proved with stand-in `docker` executables (marker `logic`): they answer like a
running or a missing engine so each rule is exercised here, where no engine runs. The `make` test
is real: on this machine no cluster can be had, and the target must say so and stop.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.support.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("atlas_mode", REPO_ROOT / "molecule" / "shared" / "atlas_mode.py")
atlas_mode = importlib.util.module_from_spec(_spec)
sys.modules["atlas_mode"] = atlas_mode  # dataclasses look their module up while the class is built
_spec.loader.exec_module(atlas_mode)


def stand_in_docker(tmp_path: Path, rc: int, out: str = "", err: str = "") -> str:
    """A PATH whose only docker prints the given answer; returns the PATH value.

    The answers below are the docker 28.2.2 client's to `docker info --format {{.ServerVersion}}`, measured
    on this machine (no engine: an empty line on stdout, the daemon message on stderr, exit 1); the running
    engine's answer is its version, as tests/provisioning/standins/standin.py records it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"#!/bin/sh\nprintf '%s' '{out}'\nprintf '%s\\n' '{err}' >&2\nexit {rc}\n")
    docker.chmod(0o755)
    return str(bin_dir)


@pytest.fixture
def engine_up(tmp_path):
    return stand_in_docker(tmp_path, 0, out="28.2.2\n")


@pytest.fixture
def engine_down(tmp_path):
    daemon_down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
    return stand_in_docker(tmp_path, 1, out="\n", err=daemon_down)


@pytest.mark.logic
def test_a_docker_engine_means_cluster_mode_on_the_dedicated_minikube_profile(engine_up):
    mode = atlas_mode.detect({"PATH": engine_up})
    assert (mode.mode, mode.cluster, mode.minikube_profile) == ("cluster", "minikube", "atlas-molecule")
    assert "docker info answered (engine 28.2.2)" in mode.reason
    other = atlas_mode.detect({"PATH": engine_up, "ATLAS_MOLECULE_MINIKUBE_PROFILE": "ci-1"})
    assert other.minikube_profile == "ci-1"


@pytest.mark.logic
def test_no_engine_means_render_mode_and_says_why(engine_down, tmp_path):
    mode = atlas_mode.detect({"PATH": engine_down})
    assert mode.mode == "render"
    assert "Cannot connect to the Docker daemon" in mode.reason
    assert "ATLAS_KUBECONFIG is not set" in mode.reason
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "docker is not installed" in atlas_mode.detect({"PATH": str(empty)}).reason


@pytest.mark.logic
def test_render_can_be_forced_even_with_an_engine(engine_up):
    assert atlas_mode.detect({"PATH": engine_up, "MOLECULE_MODE": "render"}).mode == "render"


@pytest.mark.logic
def test_forced_cluster_mode_without_a_cluster_is_an_error_not_a_fallback(engine_down):
    with pytest.raises(atlas_mode.ModeError, match=r"MOLECULE_MODE=cluster but no cluster can be had: .*Docker daemon"):
        atlas_mode.detect({"PATH": engine_down, "MOLECULE_MODE": "cluster"})


@pytest.mark.logic
def test_a_wrong_mode_names_the_variable(engine_up):
    with pytest.raises(atlas_mode.ModeError, match=r"MOLECULE_MODE must be 'render', 'cluster' or unset, got 'k8s'"):
        atlas_mode.detect({"PATH": engine_up, "MOLECULE_MODE": "k8s"})


@pytest.mark.logic
def test_an_unusable_kubeconfig_is_an_error_even_when_docker_answers(engine_up, tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(atlas_mode.ModeError, match=rf"ATLAS_KUBECONFIG={missing}: no such file"):
        atlas_mode.detect({"PATH": engine_up, "ATLAS_KUBECONFIG": str(missing)})
    with pytest.raises(atlas_mode.ModeError, match="ATLAS_KUBE_CONTEXT is set but ATLAS_KUBECONFIG is not"):
        atlas_mode.detect({"PATH": engine_up, "ATLAS_KUBE_CONTEXT": "prod"})


@pytest.mark.logic
def test_a_kubeconfig_whose_api_server_does_not_answer_is_an_error(engine_up, tmp_path):
    # Nothing listens on the port: a real connection attempt by the real client, refused.
    server = f"https://127.0.0.1:{free_port()}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        textwrap.dedent(f"""\
            apiVersion: v1
            kind: Config
            clusters: [{{name: c, cluster: {{server: "{server}", insecure-skip-tls-verify: true}}}}]
            users: [{{name: u, user: {{token: not-a-secret}}}}]
            contexts: [{{name: ctx, context: {{cluster: c, user: u}}}}]
            current-context: ctx
        """)
    )
    env = {"PATH": engine_up, "ATLAS_KUBECONFIG": str(kubeconfig)}
    with pytest.raises(atlas_mode.ModeError, match=rf"the API server {server} does not answer"):
        atlas_mode.detect(env)
    with pytest.raises(atlas_mode.ModeError, match="ATLAS_KUBE_CONTEXT=other"):
        atlas_mode.detect({**env, "ATLAS_KUBE_CONTEXT": "other"})


def test_make_molecule_cluster_fails_in_one_line_without_a_cluster():
    env = {k: v for k, v in os.environ.items() if k not in ("MOLECULE_MODE", "ATLAS_KUBECONFIG", "ATLAS_KUBE_CONTEXT")}
    if atlas_mode.detect(env).mode == "cluster":
        pytest.skip("a cluster can be had on this machine: make molecule-cluster would run for real")
    # -o setup: the virtualenv and tools are already there; this test must not reinstall them.
    proc = subprocess.run(
        ["make", "--no-print-directory", "-o", "setup", "molecule-cluster"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    reason = [line for line in proc.stderr.splitlines() if line.startswith("molecule mode:")]
    assert len(reason) == 1, proc.stderr
    assert reason[0].startswith("molecule mode: error: MOLECULE_MODE=cluster but no cluster can be had: ")
    assert "ATLAS_KUBECONFIG is not set" in reason[0]
    # It stopped before Molecule: no scenario ran, nothing fell back to render mode.
    assert "molecule test" not in proc.stdout + proc.stderr


def test_cluster_mode_runs_a_cni_that_enforces_network_policies():
    """Minikube's default CNI with the docker driver ignores NetworkPolicies; the cluster tests need one
    that enforces them (molecule/shared/tests/test_cluster.py proves the chart's policies)."""
    with open(os.path.join(REPO_ROOT, "molecule", "shared", "tasks", "cluster-target.yml")) as fh:
        minikube_target = yaml.safe_load(fh)[0]["ansible.builtin.set_fact"]
    assert minikube_target["minikube_cni"] in ("calico", "cilium")


def test_the_ci_cluster_job_installs_the_pinned_tools_instead_of_the_runners():
    with open(os.path.join(REPO_ROOT, ".github", "workflows", "ci.yml")) as fh:
        steps = yaml.safe_load(fh)["jobs"]["molecule-cluster"]["steps"]
    names = [step.get("name", "") for step in steps]
    hide, run, check = (
        names.index("Hide the runner's own minikube, helm and kubectl"),
        names.index("make molecule-cluster"),
        names.index("The tools role installed the pinned releases"),
    )
    assert hide < run < check
    assert "sudo mv" in steps[hide]["run"] and "tools_minikube_version" in steps[check]["run"]


def test_each_scenario_is_a_profile_and_its_own_settings_are_real_ones():
    """molecule/shared/scenarios.yml adds settings to a scenario's profile (tasks/mode.yml sets them): each names a
    scenario, and each setting is one the settings role reads (a typo would be refused at the first run anyway)."""
    with open(os.path.join(REPO_ROOT, "molecule", "shared", "scenarios.yml")) as fh:
        scenarios = yaml.safe_load(fh)
    with open(os.path.join(REPO_ROOT, "group_vars", "all", "profiles.yml")) as fh:
        profiles = yaml.safe_load(fh)["atlas_profiles"]
    with open(os.path.join(REPO_ROOT, "roles", "settings", "meta", "argument_specs.yml")) as fh:
        declared = yaml.safe_load(fh)["argument_specs"]["main"]["options"]
    directories = {
        name for name in os.listdir(os.path.join(REPO_ROOT, "molecule"))
        if os.path.exists(os.path.join(REPO_ROOT, "molecule", name, "molecule.yml"))
    }  # fmt: skip
    assert directories == set(profiles)
    assert set(scenarios) <= directories
    for settings in scenarios.values():
        assert set(settings) <= set(declared), settings
    # One scenario proves the Ingress entry; the others take the Gateway API (atlas_entry's default).
    assert [name for name, settings in scenarios.items() if settings.get("atlas_entry") == "ingress"] == ["users-only"]
