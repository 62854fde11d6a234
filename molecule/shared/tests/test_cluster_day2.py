"""Cluster mode, day 2: the StatefulSet guard against a real apiserver, and an upgrade from the previous chart.

The guard: a deploy that changes a persistent database's volume size stops before helm runs, and the
release is left as it was (same revision, same claim size). The upgrade: the chart at the previous git
ref (tests/chart/test_upgrade.py's previous_ref) is installed into its own namespace with the images the
scenario built, a record is written, then the working tree's chart is installed over it: the record, the
database password and `helm test` survive. Runs only where a cluster is (make molecule-cluster).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import subprocess
import tarfile
import uuid

import pytest
from kube import Cluster
from kubernetes.client.exceptions import ApiException

from tests.chart.test_upgrade import previous_ref
from tests.provisioning.ansible_run import REPO_ROOT, run_playbook
from tests.support.chart import NAMESPACE, RELEASE, helm_binary
from tests.support.postgres import wait_until

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster(mode) -> Cluster:
    return Cluster(mode)


def _target_vars(mode) -> tuple[dict, dict]:
    """The extra vars and environment that aim the playbooks at the scenario's cluster (tasks/cluster-target.yml)."""
    if mode.cluster == "minikube":
        return {"atlas_minikube_profile": mode.minikube_profile}, {}
    extra = {"atlas_cluster": "existing", "atlas_kube_context": mode.context, "atlas_build_images": False}
    return extra, {"K8S_AUTH_KUBECONFIG": mode.kubeconfig}


def _helm(cluster: Cluster, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [helm_binary(), *args]
    if cluster.context:
        cmd += ["--kube-context", cluster.context]
    if cluster.kubeconfig:
        cmd += ["--kubeconfig", cluster.kubeconfig]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _revision(cluster: Cluster, release: str, namespace: str) -> int:
    proc = _helm(cluster, "history", release, "--namespace", namespace, "--output", "json")
    assert proc.returncode == 0, proc.stderr
    return max(entry["revision"] for entry in json.loads(proc.stdout))


def test_a_bigger_volume_is_refused_before_helm_runs(cluster, mode, profile):
    if not profile.persistence:
        pytest.skip(f"profile {profile.name} has no volumes")
    service = profile.services[0]
    claim = f"data-{RELEASE}-{service}-postgresql-0"
    size_before = cluster.core.read_namespaced_persistent_volume_claim(claim, NAMESPACE).spec.resources.requests
    revision = _revision(cluster, RELEASE, NAMESPACE)
    extra, env = _target_vars(mode)
    overrides = {service: {"postgresql": {"persistence": {"size": "20Gi"}}}}

    run = run_playbook(
        "playbooks/deploy.yml",
        inventory_path=os.path.join(REPO_ROOT, "inventories", "test"),
        extra_vars={**extra, "atlas_profile": profile.name, "atlas_service_overrides": overrides},
        env=env,
        timeout=900,
    )

    assert run.rc != 0
    messages = "\n".join(run.failure_messages())
    assert f"{service}.postgresql.persistence.size: 1Gi -> 20Gi" in messages, messages
    assert _revision(cluster, RELEASE, NAMESPACE) == revision, "helm ran anyway"
    assert cluster.core.read_namespaced_persistent_volume_claim(claim, NAMESPACE).spec.resources.requests == size_before


def _exec_python(cluster: Cluster, namespace: str, pod: str, container: str, code: str) -> str:
    from kubernetes.stream import stream

    out = stream(
        cluster.core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        container=container,
        command=["python", "-c", code],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
    )
    return out


def test_upgrade_from_the_previous_chart_keeps_data_passwords_and_helm_test(cluster, profile, tmp_path):
    if profile.name != "full":
        pytest.skip("run once, in the full scenario")
    ref = previous_ref()
    if ref is None:
        pytest.skip("no previous commit to upgrade from")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "charts/atlas"], cwd=REPO_ROOT, capture_output=True
    )
    if archive.returncode != 0:
        pytest.skip(f"{ref} has no charts/atlas")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tmp_path, filter="data")
    previous_chart = str(tmp_path / "charts" / "atlas")
    current_chart = os.path.join(REPO_ROOT, "charts", "atlas")

    release, namespace = "atlas-upgrade", f"atlas-upgrade-{uuid.uuid4().hex[:6]}"
    # The images the scenario built: the previous chart runs the same code, so this is a chart upgrade only.
    images = {}
    for service in ("users", "projects"):
        deployment = cluster.apps.read_namespaced_deployment(f"{RELEASE}-{service}", NAMESPACE)
        images[service] = deployment.spec.template.spec.containers[0].image.rsplit(":", 1)[1]
    values = [
        "--set-json",
        "ingress.enabled=false",
        *[arg for s, tag in images.items() for arg in ("--set-json", f'{s}.image.tag="{tag}"')],
    ]
    try:
        first = _helm(cluster, "install", release, previous_chart, "-n", namespace, "--create-namespace", "--wait",
                      "--timeout", "10m", *values)  # fmt: skip
        assert first.returncode == 0, first.stderr

        def pod_of(component: str) -> str:
            selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component={component}"
            found = []

            def ready() -> bool:
                pods = cluster.core.list_namespaced_pod(namespace, label_selector=selector).items
                found[:] = [p.metadata.name for p in pods if Cluster.is_ready(p)]
                return bool(found)

            wait_until(ready, timeout=300, interval=2)
            return found[0]

        tag = uuid.uuid4().hex[:8]
        create = (
            "import json, urllib.request; r = urllib.request.urlopen(urllib.request.Request("
            f"'http://127.0.0.1:8080/api/v1/users', data=json.dumps({{'email': 'u-{tag}@example.test', "
            f"'name': 'U {tag}'}}).encode(), headers={{'Content-Type': 'application/json'}})); print(r.read().decode())"
        )
        record = json.loads(_exec_python(cluster, namespace, pod_of("users"), "users", create))
        secret = f"{release}-users-postgresql"  # the chart's own Secret: no playbooks in this namespace
        password = cluster.core.read_namespaced_secret(secret, namespace).data["password"]

        upgrade = _helm(cluster, "upgrade", release, current_chart, "-n", namespace, "--wait", "--timeout", "10m",
                        *values)  # fmt: skip
        assert upgrade.returncode == 0, upgrade.stderr

        assert cluster.core.read_namespaced_secret(secret, namespace).data["password"] == password
        read = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8080/api/v1/users/{record['id']}').read().decode())"
        assert json.loads(_exec_python(cluster, namespace, pod_of("users"), "users", read)) == record
        tests = _helm(cluster, "test", release, "-n", namespace, "--timeout", "5m")
        assert tests.returncode == 0, tests.stdout + tests.stderr
        assert base64.b64decode(password)  # a real password, kept
    finally:
        _helm(cluster, "uninstall", release, "-n", namespace, "--wait")
        with contextlib.suppress(ApiException):
            cluster.core.delete_namespace(namespace)
