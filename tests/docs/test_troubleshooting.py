"""docs/troubleshooting.md: its shape, and every message it says is checked, produced for real.

Each ``<!-- check: NAME -->`` block in the doc has a checker here that makes the program print the
message — the Ansible role with a stand-in for the one missing executable, the service under gunicorn
against the real PostgreSQL, the pinned ansible/helm binaries — and compares it with the quote. A
quote that drifts from the code, or a check without a quote, fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import requests
import yaml

from tests.chart.test_alert_rules import DATABASE_ALERTS, SERVICE_ALERTS
from tests.support.net import free_port
from tests.support.postgres import wait_until
from tests.support.processes import ServiceProcess

from .tilt_api import TiltfileError, evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(ROOT, "docs", "troubleshooting.md")
HELM = shutil.which("helm") or os.path.join(ROOT, ".tools", "bin", "helm")
ANSIBLE_ENV = {"ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg")}

# The failure cases issue 6 asks for, each found by a word of its heading.
REQUIRED = {
    "Docker not running": r"docker is not running",
    "not enough memory for Minikube": r"memory",
    "ingress addon not ready": r"ingress addon",
    "ImagePullBackOff": r"imagepullbackoff",
    "pending PVC without a storage class": r"pvc.*storage class",
    "CrashLoopBackOff on a bad database password": r"crashloopbackoff.*password",
    "readiness failing during a database restart": r"readiness.*database restarts",
    "port already in use for a port-forward": r"port already in use",
    "kube context pointing at the wrong cluster": r"kube context.*wrong cluster",
    "Galaxy unreachable": r"galaxy is unreachable",
    "vault password missing": r"vault password",
    "helm release stuck in pending-upgrade": r"pending-upgrade",
}


def read_doc() -> str:
    with open(DOC) as f:
        return f.read()


def cases(text: str) -> dict[str, str]:
    """'N. Title' -> the section's text."""
    parts = re.split(r"^## (\d+\. .+)$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def quoted_blocks(text: str) -> list[tuple[str, str, str]]:
    """(marker kind, marker value, block text) of every quoted message: ```text and ```json blocks."""
    return re.findall(r"^<!-- (check|source): (\S+) -->\n```(?:text|json)\n(.*?)\n```$", text, re.MULTILINE | re.DOTALL)


def quote(name: str) -> str:
    (text,) = [block for kind, value, block in quoted_blocks(read_doc()) if kind == "check" and value == name]
    return text


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


# -- the document's shape --------------------------------------------------------------------------


def test_every_case_has_symptom_cause_and_fix():
    found = cases(read_doc())
    assert len(found) >= 12
    for title, body in found.items():
        positions = [body.find(f"**{part}.**") for part in ("Symptom", "Cause", "Fix")]
        assert -1 not in positions and positions == sorted(positions), f"{title}: needs Symptom, Cause, Fix in order"
        symptom = body[positions[0] : positions[1]]
        assert quoted_blocks(symptom), f"{title}: the symptom quotes no message"


def test_every_quoted_message_says_where_it_comes_from():
    text = read_doc()
    fences = re.findall(r"^```(?:text|json)$", text, re.MULTILINE)
    assert len(quoted_blocks(text)) == len(fences), "a ```text/```json block without a check: or source: marker"
    for kind, value, _ in quoted_blocks(text):
        if kind == "source":
            assert re.match(r"^https://github\.com/[\w.-]+/[\w.-]+/(issues|pull)/\d+$", value), value


def test_the_issue_cases_are_all_there():
    titles = [t.lower() for t in cases(read_doc())]
    for case, pattern in REQUIRED.items():
        assert any(re.search(pattern, t) for t in titles), f"no case for: {case}"


def test_table_of_contents_links_every_case():
    text = read_doc()
    anchors = re.findall(r"\]\(#([^)]+)\)", text)
    assert anchors == [github_anchor(title) for title in cases(text)]


def test_checks_and_quotes_correspond():
    in_doc = {value for kind, value, _ in quoted_blocks(read_doc()) if kind == "check"}
    assert in_doc == set(CHECKS)


# -- producing each checked message ----------------------------------------------------------------


def ansible_failures(playbook: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """Run ansible-playbook with the JSON callback; return the msg of every failed task."""
    proc = subprocess.run(
        ["ansible-playbook", playbook, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **ANSIBLE_ENV, "ANSIBLE_STDOUT_CALLBACK": "json", **(env or {})},
    )  # fmt: skip
    report = json.loads(proc.stdout)
    return [
        result["msg"]
        for play in report["plays"]
        for task in play["tasks"]
        for result in task["hosts"].values()
        if result.get("failed")
    ]


def run_preflight(tmp_path, docker_script: str, *args: str) -> list[str]:
    """roles/minikube preflight on this host, with `docker` replaced by a stand-in (no engine here)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "docker").write_text("#!/bin/sh\n" + docker_script)
    (bindir / "docker").chmod(0o755)
    playbook = tmp_path / "preflight.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.include_role: {name: minikube, tasks_from: preflight}\n"
    )
    return ansible_failures(
        str(playbook),
        *args,
        env={"PATH": f"{bindir}:{os.environ['PATH']}", "ANSIBLE_ROLES_PATH": os.path.join(ROOT, "roles")},
    )


def check_preflight_engine_not_running(tmp_path, request):
    # What the docker CLI prints when its daemon is down (its message, verbatim).
    # The docker 28.2.2 client without an engine, measured here: an empty line on stdout, this on stderr, exit 1.
    daemon_down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
    failures = run_preflight(tmp_path, f'echo\necho "{daemon_down}" >&2\nexit 1\n')
    assert failures == [quote("preflight-engine-not-running")]


def check_preflight_memory(tmp_path, request):
    with open("/proc/meminfo") as f:
        total_mb = int(f.readline().split()[1]) // 1024
    failures = run_preflight(tmp_path, "echo 28.2.2\n", "-e", json.dumps({"minikube_memory_mb": total_mb + 1024}))
    assert len(failures) == 1
    # The numbers are the host's; the sentence around them is the doc's.
    pattern = re.escape(quote("preflight-memory"))
    assert re.fullmatch(re.sub(r"\d+", r"\\d+", pattern), failures[0]), failures[0]
    assert f"this host has {total_mb} MiB" in failures[0]


def check_settings_unknown_profile(tmp_path, request):
    failures = ansible_failures("playbooks/render.yml", "-i", "inventories/dev", "-e", "atlas_profile=fulll")
    assert failures == [quote("settings-unknown-profile")]


def check_settings_misspelt_key(tmp_path, request):
    overrides = {"atlas_service_overrides": {"users": {"config": {"threds": 8}}}}
    failures = ansible_failures("playbooks/render.yml", "-i", "inventories/dev", "-e", json.dumps(overrides))
    assert failures == [quote("settings-misspelt-key")]


def check_statefulset_guard(tmp_path, request):
    """The guard's message for a bigger users volume: the release role's filter on the live StatefulSet
    (the rendered one with the apiserver's defaults, as tests/provisioning/test_statefulset_guard.py has it)."""
    from tests.provisioning.test_statefulset_guard import _live, _rendered_text, _statefulset, guard

    problems = guard.statefulset_changes(
        [_live(_statefulset())], _rendered_text({"users.postgresql.persistence.size": "5Gi"})
    )
    assert problems == [quote("statefulset-guard")]


def libpq_shape(text: str) -> str:
    """libpq's connection error without the parts that differ per server: host, address, port, user."""
    text = re.sub(
        r'connection to server at "[^"]+"(?: \([^)]*\))?, port \d+', "connection to server at S, port P", text
    )
    return re.sub(r'user "[^"]+"', "user U", text)


def check_migrate_wrong_password(tmp_path, request):
    database = request.getfixturevalue("database")
    # The volume's password is the fixture's; the Secret now holds another one.
    env = {**os.environ, **database, "PGPASSWORD": database["PGPASSWORD"][::-1] + "x"}
    proc = subprocess.run(
        [sys.executable, "-m", "users", "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert libpq_shape(line) == libpq_shape(quote("migrate-wrong-password"))


@pytest.fixture
def users_service(database):
    subprocess.run([sys.executable, "-m", "users", "migrate"], env={**os.environ, **database}, check=True, timeout=60)
    with ServiceProcess("users", env=database) as service:
        yield service


def check_database_down(request, path: str, name: str):
    service = request.getfixturevalue("users_service")
    server = request.getfixturevalue("postgres_server")
    assert requests.get(service.url(path), timeout=5).status_code == 200
    server.stop()
    try:
        response = requests.get(service.url(path), timeout=10)
        assert response.status_code == 503
        assert response.json() == json.loads(quote(name))
        assert requests.get(service.url("/livez"), timeout=5).status_code == 200, "liveness must not follow the db"
    finally:
        server.start()
    # The doc's "Fix: nothing": the same process recovers on its own.
    started = time.monotonic()
    wait_until(lambda: requests.get(service.url("/readyz"), timeout=5).status_code == 200, timeout=30)
    print(f"{path}: ready again {time.monotonic() - started:.2f}s after the database came back")
    assert requests.get(service.url(path), timeout=5).status_code == 200


def check_readyz_database_down(tmp_path, request):
    check_database_down(request, "/readyz", "readyz-database-down")


def check_api_database_down(tmp_path, request):
    check_database_down(request, "/api/v1/users", "api-database-down")


def check_service_invalid_configuration(tmp_path, request):
    service = ServiceProcess("users", env={"ATLAS_DB_POOL_SIZE": "x"})
    service.start(wait_path=None)
    try:
        service.proc.wait(timeout=20)
    finally:
        service.stop()
    assert service.proc.returncode != 0
    assert quote("service-invalid-configuration") in service.logs().splitlines()


def check_tiltfile_wrong_context(tmp_path, request):
    with pytest.raises(TiltfileError) as failure:
        evaluate(ROOT, "prod-eu-1", {"profile": "full"})
    assert str(failure.value) == quote("tiltfile-wrong-context")


def kubeconfig_without(tmp_path, context: str) -> str:
    """A kubeconfig whose only context is the dev Minikube's, so `context` does not exist in it."""
    path = tmp_path / "kubeconfig"
    assert context != "atlas-dev"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: atlas-dev\n"
        "clusters: [{name: atlas-dev, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "contexts: [{name: atlas-dev, context: {cluster: atlas-dev, user: atlas-dev}}]\n"
        "users: [{name: atlas-dev, user: {token: not-a-secret}}]\n"
    )
    return str(path)


def check_k8s_unknown_context(tmp_path, request):
    kubeconfig = kubeconfig_without(tmp_path, "prod")
    playbook = tmp_path / "context.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - kubernetes.core.k8s_info: {context: prod, kind: Namespace, name: atlas}\n"
    )
    failures = ansible_failures(str(playbook), env={"KUBECONFIG": kubeconfig})
    assert [f.replace(kubeconfig, "/home/you/.kube/config") for f in failures] == [quote("k8s-unknown-context")]


def check_helm_unknown_context(tmp_path, request):
    env = {**os.environ, "KUBECONFIG": kubeconfig_without(tmp_path, "prod")}
    proc = subprocess.run([HELM, "status", "atlas", "--kube-context", "prod"], env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == quote("helm-unknown-context")


def check_helm_pending_upgrade(tmp_path, request):
    # Needs a cluster to provoke; the pinned helm must at least carry both parts of the sentence.
    prefix, _, reason = quote("helm-pending-upgrade").removeprefix("Error: ").partition(": ")
    with open(os.path.realpath(HELM), "rb") as f:
        binary = f.read()
    assert prefix.encode() in binary and reason.encode() in binary


def check_galaxy_unreachable(tmp_path, request):
    # A closed local port instead of galaxy.ansible.com: the same failure, whatever this machine's network.
    server = f"http://127.0.0.1:{free_port()}/"
    install = ["ansible-galaxy", "collection", "install", "-r", "requirements.yml", "--force", "-p", str(tmp_path)]
    proc = subprocess.run(
        [*install, "--server", server], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode != 0
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("[ERROR]")]

    def shape(text: str) -> str:
        return re.sub(r"'http[^']+' *: <urlopen error [^>]+>", "'URL': <urlopen error E>", text)

    assert shape(line) == shape(quote("galaxy-unreachable"))


def check_vault_password_missing(tmp_path, request):
    # The prod inventory as a user has it after `cp vault.yml.example vault.yml && ansible-vault encrypt vault.yml`.
    inventory = tmp_path / "prod"
    shutil.copytree(os.path.join(ROOT, "inventories", "prod"), inventory)
    vault = inventory / "group_vars" / "all" / "vault.yml"
    shutil.copy(vault.with_suffix(".yml.example"), vault)
    (tmp_path / "pass").write_text("throwaway-test-vault-password\n")
    subprocess.run(
        ["ansible-vault", "encrypt", "--vault-password-file", str(tmp_path / "pass"), str(vault)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    proc = subprocess.run(
        ["ansible-playbook", "playbooks/render.yml", "-i", str(inventory)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **ANSIBLE_ENV},
    )  # fmt: skip
    assert proc.returncode != 0
    assert quote("vault-password-missing") in (proc.stdout + proc.stderr).splitlines()


CHECKS = {
    "preflight-engine-not-running": check_preflight_engine_not_running,
    "preflight-memory": check_preflight_memory,
    "settings-unknown-profile": check_settings_unknown_profile,
    "settings-misspelt-key": check_settings_misspelt_key,
    "migrate-wrong-password": check_migrate_wrong_password,
    "readyz-database-down": check_readyz_database_down,
    "api-database-down": check_api_database_down,
    "service-invalid-configuration": check_service_invalid_configuration,
    "tiltfile-wrong-context": check_tiltfile_wrong_context,
    "k8s-unknown-context": check_k8s_unknown_context,
    "helm-unknown-context": check_helm_unknown_context,
    "helm-pending-upgrade": check_helm_pending_upgrade,
    "galaxy-unreachable": check_galaxy_unreachable,
    "vault-password-missing": check_vault_password_missing,
    "statefulset-guard": check_statefulset_guard,
}


def check_alert(name: str):
    """An alert as Alertmanager shows it: the rendered PrometheusRule's alert fires in promtool with this summary."""

    def check(tmp_path, request):
        from tests.chart.test_alert_rules import firing_alert_line

        assert firing_alert_line(name, tmp_path) == quote(f"alert-{name}")

    return check


CHECKS.update({f"alert-{name}": check_alert(name) for name in (*SERVICE_ALERTS, *DATABASE_ALERTS)})


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_quoted_message_is_what_the_program_prints(name, tmp_path, request):
    CHECKS[name](tmp_path, request)


def test_the_names_the_commands_use_are_the_dev_inventorys():
    with open(os.path.join(ROOT, "inventories", "dev", "group_vars", "atlas.yml")) as f:
        dev = yaml.safe_load(f)
    with open(os.path.join(ROOT, "group_vars", "all", "atlas.yml")) as f:
        defaults = yaml.safe_load(f)
    profile = re.sub(r"\{\{\s*atlas_env\s*\}\}", dev["atlas_env"], defaults["atlas_minikube_profile"])
    stated = re.search(
        r"Minikube profile \(and kube context\) `([^`]+)`, namespace\s+`([^`]+)`, release `([^`]+)`", read_doc()
    )
    assert stated.groups() == (profile, defaults["atlas_namespace"], defaults["atlas_release_name"])
    # ...and every command in the doc uses those, not some other context.
    assert set(re.findall(r"--(?:kube-)?context[ =](\S+)", read_doc())) == {profile}
