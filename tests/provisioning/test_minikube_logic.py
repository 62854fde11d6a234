"""The minikube role's decisions, against stand-in `minikube` and `docker` executables.

Real: ansible-playbook with playbooks/bootstrap.yml (the settings, minikube and tools roles, the minikube
role's filter plugin), ansible.builtin's command and setup modules, the real helm binary. Stand-in: the
`minikube` and `docker` executables (tests/provisioning/standins/standin.py), which answer as minikube
v1.35.0 and docker 28.2.2 do — output format, stdout vs stderr, exit codes — and keep the profile's state
between calls. What they cannot show is a real cluster starting: these tests prove the branching (start
only when not running, addons only when missing, preflight stops), not that Minikube comes up.
"""

from __future__ import annotations

import pytest

from tests.provisioning.ansible_run import run_playbook
from tests.provisioning.standins import Standins

pytestmark = pytest.mark.logic

PLAYBOOK = "playbooks/bootstrap.yml"  # the real entry point: settings, preflight, tools, cluster
PROFILE = "atlas-dev"


@pytest.fixture
def tools(tmp_path):
    standins = Standins(tmp_path / "standins")
    yield standins
    standins.remove()


def _run(tools: Standins, extra_vars=None):
    tools.clear_calls()
    return run_playbook(PLAYBOOK, "dev", extra_vars, env=tools.env())


def _profile(host: str = "Running", **addons: bool) -> dict:
    enabled = {"default-storageclass": True, "storage-provisioner": True, "ingress": True, "metrics-server": True}
    enabled.update({name.replace("_", "-"): on for name, on in addons.items()})
    return {PROFILE: {"host": host, "addons": enabled, "images": []}}


def test_running_profile_with_addons_is_left_alone(tools):
    tools.update(profiles=_profile())
    run = _run(tools)

    assert run.rc == 0, run.failure_messages()
    assert tools.calls("minikube", "start") == [] and tools.calls("minikube", "addons", "enable") == []
    assert run.changed() == 0


def test_stopped_profile_is_started_and_only_missing_addons_enabled(tools):
    tools.update(profiles=_profile("Stopped", metrics_server=False))
    run = _run(tools)

    assert run.rc == 0, run.failure_messages()
    [start] = tools.calls("minikube", "start")
    assert start[:5] == ["start", "-p", PROFILE, "--driver", "docker"]
    assert "--cpus" in start and "--memory" in start and "--cni" not in start
    assert tools.calls("minikube", "addons", "enable") == [["addons", "enable", "metrics-server", "-p", PROFILE]]
    assert run.changed() == 2


def test_missing_profile_is_started_then_gets_its_addons(tools):
    """minikube v1.35.0 answers a missing profile with two JSON event lines and exit 85."""
    run = _run(tools)

    assert run.rc == 0, run.failure_messages()
    assert len(tools.calls("minikube", "start")) == 1
    # The Gateway API entry (atlas_entry's default) brings its own controller (roles/gateway): no ingress addon.
    assert sorted(c[2] for c in tools.calls("minikube", "addons", "enable")) == ["metrics-server"]
    assert tools.state()["profiles"][PROFILE]["addons"]["ingress"] is False


def test_the_ingress_addon_comes_with_the_ingress_entry(tools):
    tools.update(profiles=_profile(ingress=False))
    run = _run(tools, {"atlas_entry": "ingress"})

    assert run.rc == 0, run.failure_messages()
    assert tools.calls("minikube", "addons", "enable") == [["addons", "enable", "ingress", "-p", PROFILE]]


def test_an_enabled_ingress_addon_is_left_when_the_entry_is_the_gateway(tools):
    """Switching entry does not disable the addon (other things may use it); README says how to free it."""
    tools.update(profiles=_profile())
    run = _run(tools)

    assert run.rc == 0 and run.changed() == 0, run.failure_messages()
    assert tools.calls("minikube", "addons", "disable") == []


def test_warnings_before_the_status_object_do_not_start_a_running_profile(tools):
    tools.update(
        profiles=_profile(),
        status_warnings=['Executing "docker container inspect atlas-dev" took an unusually long time: 2.1s'],
    )
    run = _run(tools)

    assert run.rc == 0, run.failure_messages()
    assert tools.calls("minikube", "start") == []


def test_cni_setting_reaches_minikube_start(tools):
    run = _run(tools, {"minikube_cni": "calico"})

    assert run.rc == 0, run.failure_messages()
    [start] = tools.calls("minikube", "start")
    assert start[start.index("--cni") + 1] == "calico"


def test_engine_not_running_stops_in_preflight(tools):
    tools.update(docker={"running": False})
    run = _run(tools)

    assert run.rc != 0
    [message] = run.failure_messages()
    assert message.startswith("preflight: the docker engine is not running (Cannot connect to the Docker daemon")
    assert "Fix: start it (sudo systemctl start docker)" in message
    assert tools.calls("minikube") == []  # nothing past preflight ran


@pytest.mark.parametrize(
    ("extra_vars", "expected"),
    [
        ({"minikube_driver": "podman"}, "preflight: the podman driver is not installed. Fix: install podman"),
        ({"minikube_cpus": 4096}, "preflight: minikube_cpus is 4096 but this host has"),
        ({"minikube_memory_mb": 100_000_000}, "preflight: minikube_memory_mb is 100000000 but this host has"),
        # dev is profile full: the monitoring stack raises the minimum (test_observability.py covers both)
        ({"minikube_cpus": 1}, "minikube_cpus must be >= 2 and minikube_memory_mb >= 6144"),
        # `-e minikube_memory_mb=100000000` arrives as a string, as the fix message tells users to write it
        ({"minikube_memory_mb": "100000000"}, "preflight: minikube_memory_mb is 100000000 but this host has"),
    ],
    ids=["driver-missing", "cpus", "memory", "below-minimum", "memory-as-string"],
)
def test_preflight_failures_name_the_reason_and_fix(tools, extra_vars, expected):
    run = _run(tools, extra_vars)

    assert run.rc != 0
    assert any(m.startswith(expected) for m in run.failure_messages()), run.failure_messages()
    assert tools.calls("minikube") == []
