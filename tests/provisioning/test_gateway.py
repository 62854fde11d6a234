"""The gateway controller (roles/gateway) and the settings that drive it, without a cluster.

Real: ansible-playbook with the project's playbooks and roles (settings, gateway), kubernetes.core 6.2.0 (helm,
helm_info, k8s, k8s_info), the real helm 3.17 reading and asking what it would on a cluster. Stand-ins: the
Kubernetes API server (tests/support/kube_api.py, with the Gateway API and Envoy Gateway kinds its CRDs bring:
tests/provisioning/gateway_crds.py) and, for the controller's chart, a closed local port where Docker Hub would be
(helm's request for the pinned OCI tag is what is checked) or, once "installed", a release stored in the stand-in
as helm 3 stores one. What is not here: Envoy Gateway itself (Docker Hub is out of reach of these tests), so its
install, its CRDs and what its proxies then do (401, 429, routing) are proved in cluster mode only
(molecule/shared/tests/test_cluster_gateway.py, `make molecule-cluster`).
"""

from __future__ import annotations

import base64
import gzip
import json

import pytest
import yaml

from tests.provisioning.ansible_run import REPO_ROOT, PlaybookRun, run_playbook
from tests.provisioning.gateway_crds import accept_when_read, serving_gateway_crds
from tests.support import gateway_schemas
from tests.support.kube_api import KubeApi

pytestmark = pytest.mark.logic

DEPLOY = "playbooks/deploy.yml"
NAMESPACE = "envoy-gateway-system"
with open(f"{REPO_ROOT}/group_vars/all/gateway.yml") as _fh:
    DEFAULTS = yaml.safe_load(_fh)["atlas_gateway_defaults"]
VERSION = DEFAULTS["controller"]["chart_version"]
# What the role gives the chart (roles/gateway/defaults/main.yml gateway_values), with nothing set in atlas_gateway.
ROLE_VALUES = {
    "deployment": {
        "envoyGateway": {"resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "1024Mi"}}}
    }
}


def helm_release_secret(values: dict, version: str = VERSION, name: str = "eg") -> dict:
    """A release as helm 3 stores it (helm v3.17 pkg/storage/driver/secrets.go newSecretsObject and util.go
    encodeRelease: the release JSON, gzipped, base64 in data.release, which the Secret's own base64 wraps again;
    labels name, owner=helm, status, version). What `helm upgrade -i` leaves behind for the chart gateway-helm."""
    release = {
        "name": name,
        "info": {
            "first_deployed": "2026-12-01T10:00:00Z",
            "last_deployed": "2026-12-01T10:00:00Z",
            "deleted": "",
            "description": "Install complete",
            "status": "deployed",
        },
        "chart": {
            "metadata": {"name": "gateway-helm", "version": version, "appVersion": version, "apiVersion": "v2"},
            "lock": None,
            "templates": [],
            "values": {},
            "schema": None,
            "files": [],
        },
        "config": values,
        "manifest": "",
        "version": 1,
        "namespace": NAMESPACE,
    }
    encoded = base64.b64encode(gzip.compress(json.dumps(release).encode())).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{name}.v1",
            "namespace": NAMESPACE,
            "labels": {"name": name, "owner": "helm", "status": "deployed", "version": "1"},
        },
        "data": {"release": base64.b64encode(encoded.encode()).decode()},
    }


@pytest.fixture
def local_chart(tmp_path):
    """A chart of the same name and version as the pinned one, on disk: what kubernetes.core.helm compares an
    installed release with (its name-version) once the release exists, without Docker Hub."""
    chart = tmp_path / "gateway-helm"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v2", "name": "gateway-helm", "version": VERSION, "appVersion": VERSION})
    )
    return str(chart)


def _run(api: KubeApi, tmp_path, *args: str, **extra) -> PlaybookRun:
    env = {
        "K8S_AUTH_KUBECONFIG": api.kubeconfig(tmp_path / "kubeconfig", context="atlas-dev"),
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
        "HELM_REGISTRY_CONFIG": str(tmp_path / "registry.json"),
    }
    extra = {"atlas_build_dir": str(tmp_path / "build"), "atlas_credentials_dir": str(tmp_path / "cred"), **extra}
    return run_playbook(DEPLOY, "dev", extra, env=env, args=["--tags", "gateway", *args])


def _writes(api: KubeApi, dry_run: bool = False) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in api.requests if r.method != "GET" and (r.q("dryRun") == "All") is dry_run]


def test_the_controller_is_asked_of_helm_by_its_oci_chart_and_pinned_tag(tmp_path):
    """First install: the module asks helm for the chart at the pinned tag (chart versions carry the v); here the
    registry is a closed port, so that is where it stops, before anything is written to the cluster."""
    closed = "oci://127.0.0.1:9/envoyproxy/gateway-helm"
    with KubeApi() as api, serving_gateway_crds():
        run = _run(api, tmp_path, atlas_gateway={"controller": {"chart_ref": closed}})
        writes = _writes(api)
        assert api.errors == [], api.errors[0]

    assert run.rc != 0
    [result] = run.results("gateway : Install or upgrade the controller")
    assert result["command"].endswith(f"--version={VERSION} show chart '{closed}'"), result["command"]
    # helm 3.17 turns the pinned version into the OCI tag it asks the registry for.
    assert f"/v2/envoyproxy/gateway-helm/manifests/{VERSION}" in result["stderr"], result["stderr"]
    assert writes == []
    assert "gateway : Create the GatewayClass and wait for the controller to accept it" not in run.tasks_run()


def test_an_installed_controller_is_left_as_it_is_and_the_class_is_created_once(tmp_path, local_chart):
    with KubeApi() as api, serving_gateway_crds():
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        api.add(helm_release_secret(ROLE_VALUES))
        accept_when_read(api, "eg")
        first = _run(api, tmp_path, gateway_chart_ref=local_chart)
        first_writes = _writes(api)
        api.clear_requests()
        again = _run(api, tmp_path, gateway_chart_ref=local_chart)
        again_writes = _writes(api)
        gateway_class = api.get("GatewayClass", None, "eg")
        proxy = api.get("EnvoyProxy", NAMESPACE, "eg-proxy")
        assert api.errors == [], api.errors[0]

    assert first.rc == 0, first.failure_messages()
    [helm] = first.results("gateway : Install or upgrade the controller")
    assert helm["changed"] is False  # same chart name-version and values: no upgrade (no helm-diff needed)
    assert first_writes == [
        ("POST", f"/apis/gateway.envoyproxy.io/v1alpha1/namespaces/{NAMESPACE}/envoyproxies"),
        ("POST", "/apis/gateway.networking.k8s.io/v1/gatewayclasses"),
    ]
    reference = {"group": "gateway.envoyproxy.io", "kind": "EnvoyProxy", "name": "eg-proxy", "namespace": NAMESPACE}
    assert gateway_class["spec"] == {
        "controllerName": "gateway.envoyproxy.io/gatewayclass-controller",
        "parametersRef": reference,
    }
    resources = proxy["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]["resources"]
    assert resources == {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
    # Both are what Envoy Gateway's CRDs accept (the published schemas; tests/support/gateway_schemas.py).
    if gateway_schemas.missing() is None:
        results = gateway_schemas.validate([gateway_class, proxy])
        assert all(r["known"] and r["ok"] for r in results), results
    # The second run: nothing changes (the PATCHes find what is there).
    assert again.rc == 0 and again.changed() == 0, again.failure_messages()
    assert all(method == "PATCH" for method, _ in again_writes), again_writes


def test_a_changed_pin_or_values_is_an_upgrade(tmp_path, local_chart):
    """An older release (another version): an upgrade; check mode says so and writes nothing."""
    with KubeApi() as api, serving_gateway_crds():
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        api.add(helm_release_secret(ROLE_VALUES, version="v1.8.2"))
        accept_when_read(api, "eg")
        check = _run(api, tmp_path, "--check", gateway_chart_ref=local_chart)
        writes = _writes(api)
        assert api.errors == [], api.errors[0]

    assert check.rc == 0, check.failure_messages()
    [said] = check.results("gateway : Say what check mode would do to the controller")
    assert said["changed"] is True
    assert said["msg"] == (
        f"check mode: a real run upgrades gateway-helm-v1.8.2 to gateway-helm-{VERSION} as release eg"
        f" in namespace {NAMESPACE}"
    )
    assert check.results("gateway : Install or upgrade the controller")[0].get("skipped")
    assert writes == []


def test_check_mode_on_a_cluster_without_envoy_gateway_writes_nothing_and_says_what_it_cannot_try(tmp_path):
    with KubeApi() as api:  # no Gateway API kinds served: Envoy Gateway's chart has not been installed
        run = _run(api, tmp_path, "--check")
        writes = _writes(api)
        assert api.errors == [], api.errors[0]

    assert run.rc == 0, run.failure_messages()
    assert writes == []
    [said] = run.results("gateway : Say what check mode would do to the controller")
    assert (
        said["msg"] == f"check mode: a real run installs gateway-helm-{VERSION} as release eg in namespace {NAMESPACE}"
    )
    [cannot] = run.results("gateway : Say what check mode cannot try before Envoy Gateway's CRDs exist")
    assert cannot["msg"].startswith("check mode: the cluster does not serve GatewayClass and EnvoyProxy yet")
    assert not (tmp_path / "helm-cache").exists(), "check mode downloaded the chart"


def test_settings_reach_the_chart_and_the_proxies(tmp_path, local_chart):
    """atlas_gateway.controller.values and .proxy are merged over the role's own; a new className names the class."""
    given = {
        "className": "atlas-eg",
        "controller": {
            "values": {"deployment": {"replicas": 2}},
            "proxy": {"provider": {"kubernetes": {"envoyService": {"type": "NodePort"}}}},
        },
    }
    values = {**ROLE_VALUES, "deployment": {**ROLE_VALUES["deployment"], "replicas": 2}}
    with KubeApi() as api, serving_gateway_crds():
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        api.add(helm_release_secret(values))
        accept_when_read(api, "atlas-eg")
        run = _run(api, tmp_path, gateway_chart_ref=local_chart, atlas_gateway=given)
        proxy = api.get("EnvoyProxy", NAMESPACE, "atlas-eg-proxy")
        assert api.get("GatewayClass", None, "atlas-eg") is not None
        assert api.errors == [], api.errors[0]

    assert run.rc == 0, run.failure_messages()
    assert run.results("gateway : Install or upgrade the controller")[0]["changed"] is False  # the values match
    kubernetes = proxy["spec"]["provider"]["kubernetes"]
    assert kubernetes["envoyService"] == {"type": "NodePort"}
    assert kubernetes["envoyDeployment"]["container"]["resources"]["requests"]["cpu"] == "50m"


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ({"atlas_entry": "ingress"}, "atlas_entry is ingress: no gateway controller is installed or changed."),
        (
            {"atlas_gateway": {"create": False, "name": "shared", "namespace": "infra"}},
            "atlas_gateway.create is false: the routes attach to the existing Gateway infra/shared",
        ),
    ],
    ids=["ingress", "existing-gateway"],
)
def test_off_runs_no_task_and_asks_the_cluster_nothing(given, why, tmp_path):
    with KubeApi() as api:
        run = _run(api, tmp_path, **given)
        requests = [(r.method, r.path) for r in api.requests]
        assert api.errors == [], api.errors[0]

    assert run.rc == 0, run.failure_messages()
    assert requests == []
    role_tasks = [t for t in run.tasks_run() if t.startswith("gateway : ") and "arg spec" not in t]
    assert role_tasks == [
        "gateway : Say that the gateway controller is not Atlas' to install",
        "gateway : Install the gateway controller",
    ]
    [said] = run.results("gateway : Say that the gateway controller is not Atlas' to install")
    assert said["msg"].startswith(why), said["msg"]


def test_the_pinned_version_names_its_source():
    with open(f"{REPO_ROOT}/group_vars/all/gateway.yml") as fh:
        text = fh.read()
    assert f"envoyproxy/gateway, tag {VERSION}, charts/gateway-helm" in text
    assert DEFAULTS["controller"]["chart_ref"] == "oci://docker.io/envoyproxy/gateway-helm"
