"""The minikube role's decisions, with stand-in `minikube` and `docker` executables on PATH that record
their calls. These prove branching (start only when not running, addons only when missing, preflight
failures), not a cluster.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from tests.provisioning.ansible_run import run_playbook

pytestmark = pytest.mark.logic

PLAYBOOK = "tests/provisioning/playbooks/minikube.yml"
RUNNING = {"Name": "atlas-dev", "Host": "Running", "Kubelet": "Running", "APIServer": "Running"}
STOPPED = {"Name": "atlas-dev", "Host": "Stopped", "Kubelet": "Stopped", "APIServer": "Stopped"}

# One stand-in for both tools: its behaviour comes from FAKE_* variables, every call goes to FAKE_LOG.
STANDIN = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps([tool, *args]) + "\\n")
    if tool == "docker" and args[:1] == ["info"]:
        if os.environ.get("FAKE_DOCKER_DOWN"):
            sys.exit("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                     "Is the docker daemon running?")
        print("28.2.2")
    elif tool == "minikube" and args[:1] == ["status"]:
        print(os.environ["FAKE_MINIKUBE_STATUS"])
        sys.exit(int(os.environ.get("FAKE_MINIKUBE_STATUS_RC", "0")))
    elif tool == "minikube" and args[:2] == ["addons", "list"]:
        print(os.environ["FAKE_MINIKUBE_ADDONS"])
    """
)


def _addons(**status: str) -> str:
    return json.dumps({name.replace("_", "-"): {"Profile": "atlas-dev", "Status": s} for name, s in status.items()})


@pytest.fixture
def standins(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("minikube", "docker"):
        path = bin_dir / tool
        path.write_text(STANDIN.format(python=sys.executable))
        path.chmod(0o755)
    log = tmp_path / "calls.jsonl"

    def run(status=RUNNING, status_rc=0, addons=None, extra_vars=None, **env):
        log.unlink(missing_ok=True)
        fake_env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "FAKE_LOG": str(log),
            "FAKE_MINIKUBE_STATUS": status if isinstance(status, str) else json.dumps(status),
            "FAKE_MINIKUBE_STATUS_RC": str(status_rc),
            "FAKE_MINIKUBE_ADDONS": addons or _addons(ingress="enabled", metrics_server="enabled"),
            **env,
        }
        result = run_playbook(PLAYBOOK, "dev", extra_vars, env=fake_env)
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return result, calls

    return run


def _minikube_calls(calls, *prefix):
    return [c[1:] for c in calls if c[0] == "minikube" and c[1 : 1 + len(prefix)] == list(prefix)]


def test_running_profile_with_addons_is_left_alone(standins):
    run, calls = standins()

    assert run.rc == 0, run.failure_messages()
    assert _minikube_calls(calls, "start") == [] and _minikube_calls(calls, "addons", "enable") == []
    assert run.changed() == 0


def test_stopped_profile_is_started_and_only_missing_addons_enabled(standins):
    run, calls = standins(status=STOPPED, status_rc=7, addons=_addons(ingress="enabled", metrics_server="disabled"))

    assert run.rc == 0, run.failure_messages()
    [start] = _minikube_calls(calls, "start")
    assert start[:5] == ["start", "-p", "atlas-dev", "--driver", "docker"]
    assert "--cpus" in start and "--memory" in start
    assert _minikube_calls(calls, "addons", "enable") == [["addons", "enable", "metrics-server", "-p", "atlas-dev"]]
    assert run.changed() == 2


def test_missing_profile_is_started(standins):
    run, calls = standins(status='* Profile "atlas-dev" not found.', status_rc=85)

    assert run.rc == 0, run.failure_messages()
    assert len(_minikube_calls(calls, "start")) == 1


def test_engine_not_running_stops_in_preflight(standins):
    run, calls = standins(FAKE_DOCKER_DOWN="1")

    assert run.rc != 0
    [message] = run.failure_messages()
    assert message.startswith("preflight: the docker engine is not running (Cannot connect to the Docker daemon")
    assert "Fix: start it (sudo systemctl start docker)" in message
    assert _minikube_calls(calls) == []  # nothing past preflight ran


@pytest.mark.parametrize(
    ("extra_vars", "expected"),
    [
        ({"minikube_driver": "podman"}, "preflight: the podman driver is not installed. Fix: install podman"),
        ({"minikube_cpus": 4096}, "preflight: minikube_cpus is 4096 but this host has"),
        ({"minikube_memory_mb": 100_000_000}, "preflight: minikube_memory_mb is 100000000 but this host has"),
        ({"minikube_cpus": 1}, "minikube_cpus must be >= 2 and minikube_memory_mb >= 2048"),
        # `-e minikube_memory_mb=100000000` arrives as a string, as the fix message tells users to write it
        ({"minikube_memory_mb": "100000000"}, "preflight: minikube_memory_mb is 100000000 but this host has"),
    ],
    ids=["driver-missing", "cpus", "memory", "below-minimum", "memory-as-string"],
)
def test_preflight_failures_name_the_reason_and_fix(standins, extra_vars, expected):
    run, calls = standins(extra_vars=extra_vars)

    assert run.rc != 0
    assert any(m.startswith(expected) for m in run.failure_messages()), run.failure_messages()
    assert _minikube_calls(calls) == []
