"""The monitoring stack (roles/observability) and the settings that drive it, without a cluster.

Real: ansible-playbook with the project's playbooks and roles (settings, observability, values, release),
kubernetes.core 6.2.0, the real helm (the Atlas chart's render), the role's values templates rendered by Ansible
itself. Stand-ins: the Kubernetes API server (tests/support/kube_api.py) and minikube/docker
(tests/provisioning/standins). What is not here: the three charts (kube-prometheus-stack, Loki, Alloy), which
come from chart repositories out of reach of these tests; their install and what they then do (targets up,
rules loaded, dashboards listed, log lines in Loki) is proved in cluster mode only
(molecule/shared/tests/test_cluster_observability.py, `make molecule-cluster`).
"""

from __future__ import annotations

import base64
import os

import pytest
import yaml

from tests.provisioning.ansible_run import REPO_ROOT, PlaybookRun, run_playbook
from tests.provisioning.standins import Standins
from tests.support.kube_api import KubeApi

pytestmark = pytest.mark.logic

RENDER = "playbooks/render.yml"
DEPLOY = "playbooks/deploy.yml"
RELEASES = ("kube-prometheus-stack", "loki", "alloy")
with open(f"{REPO_ROOT}/group_vars/all/profiles.yml") as _fh:
    FULL_SERVICES = yaml.safe_load(_fh)["atlas_profiles"]["full"]["services"]  # the profile dev_full deploys


def _stack_values(run: PlaybookRun) -> dict:
    """Each release's values, as the role worked them out (its first task, before any cluster call)."""
    [*_, last] = run.results("observability : Work out each release's values")
    return last["ansible_facts"]["observability_values"]


def _manifests(build) -> list[dict]:
    with open(build / "manifests.yaml") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def _matches(selector: dict, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions In/NotIn/Exists/DoesNotExist); {} matches all."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _namespace_labels(name: str) -> dict:
    # Kubernetes sets this label on every namespace (NamespaceDefaultLabelName, GA in 1.22).
    return {"kubernetes.io/metadata.name": name}


@pytest.fixture(scope="module")
def dev_full(tmp_path_factory):
    """dev (profile full: the stack on): the Atlas manifests render.yml writes, and the stack's values from a
    check-mode deploy with no cluster (check mode compares with nothing and writes nothing)."""
    root = tmp_path_factory.mktemp("dev-full")
    extra = {"atlas_build_dir": str(root / "build"), "atlas_credentials_dir": str(root / "cred")}
    render = run_playbook(RENDER, "dev", extra)
    assert render.rc == 0, render.failure_messages()
    env = {"K8S_AUTH_KUBECONFIG": str(root / "no-kubeconfig"), "HELM_REPOSITORY_CONFIG": str(root / "repos.yaml")}
    deploy = run_playbook(DEPLOY, "dev", {**extra, "atlas_build_dir": str(root / "check")}, env=env, args=["--check"])
    assert deploy.rc == 0, deploy.failure_messages()
    return {"manifests": _manifests(root / "build"), "values": _stack_values(deploy), "root": root, "run": deploy}


def test_prometheus_selects_atlas_servicemonitors_and_rules(dev_full):
    prometheus = dev_full["values"]["kube-prometheus-stack"]["prometheus"]["prometheusSpec"]
    monitors = [d for d in dev_full["manifests"] if d["kind"] == "ServiceMonitor"]
    # One per service of the profile and one per database exporter: a new service is data here too.
    assert {m["metadata"]["name"] for m in monitors} == {
        name for service in FULL_SERVICES for name in (f"atlas-{service}", f"atlas-{service}-postgresql")
    }
    # The chart's defaults (true) would select only objects labelled release: kube-prometheus-stack.
    for kind in ("serviceMonitor", "podMonitor", "rule"):
        assert prometheus[f"{kind}SelectorNilUsesHelmValues"] is False, kind
    for monitor in monitors:
        labels, namespace = monitor["metadata"]["labels"], monitor["metadata"]["namespace"]
        assert "release" not in labels  # nothing ties them to the stack's release
        assert _matches(prometheus["serviceMonitorSelector"], labels), monitor["metadata"]
        assert _matches(prometheus["serviceMonitorNamespaceSelector"], _namespace_labels(namespace))
    # ...and nothing in a namespace that is neither Atlas' nor the stack's.
    assert not _matches(prometheus["serviceMonitorNamespaceSelector"], _namespace_labels("kube-system"))
    assert _matches(prometheus["serviceMonitorNamespaceSelector"], _namespace_labels("monitoring"))
    rules = [d for d in dev_full["manifests"] if d["kind"] == "PrometheusRule"]
    assert [r["metadata"]["name"] for r in rules] == ["atlas-metrics"]
    for rule in rules:
        assert _matches(prometheus["ruleSelector"], rule["metadata"]["labels"])
        assert _matches(prometheus["ruleNamespaceSelector"], _namespace_labels(rule["metadata"]["namespace"]))


def test_grafana_sidecar_finds_atlas_dashboards(dev_full):
    grafana = dev_full["values"]["kube-prometheus-stack"]["grafana"]
    sidecar = grafana["sidecar"]["dashboards"]
    assert sidecar["enabled"] is True
    dashboards = [d for d in dev_full["manifests"] if d["kind"] == "ConfigMap" and "dashboard" in d["metadata"]["name"]]
    assert {d["metadata"]["name"] for d in dashboards} == {
        *(f"atlas-{service}-dashboard" for service in FULL_SERVICES),
        "atlas-databases-dashboard",
    }
    for dashboard in dashboards:
        assert dashboard["metadata"]["labels"].get(sidecar["label"]) == sidecar["labelValue"], dashboard["metadata"]
        namespace = dashboard["metadata"].get("namespace", "atlas")
        assert sidecar["searchNamespace"] == "ALL" or namespace in sidecar["searchNamespace"]


def test_grafana_reads_its_admin_secret_and_has_loki(dev_full):
    grafana = dev_full["values"]["kube-prometheus-stack"]["grafana"]
    with open(f"{REPO_ROOT}/roles/observability/defaults/main.yml") as fh:
        secret = yaml.safe_load(fh)["observability_grafana_credentials"]
    assert grafana["admin"] == {"existingSecret": secret, "userKey": "admin-user", "passwordKey": "admin-password"}
    assert "adminPassword" not in grafana
    [loki] = [d for d in grafana["additionalDataSources"] if d["type"] == "loki"]
    # The Loki chart's single-binary Service is named after the release (loki) and listens on 3100.
    assert loki["url"] == "http://loki.monitoring.svc:3100"
    assert dev_full["values"]["loki"]["deploymentMode"] == "Monolithic"
    assert dev_full["values"]["loki"]["loki"]["storage"]["type"] == "filesystem"
    assert dev_full["values"]["loki"]["singleBinary"]["replicas"] == 1


def test_alloy_ships_atlas_pod_logs_to_that_loki(dev_full):
    alloy = dev_full["values"]["alloy"]
    content = alloy["alloy"]["configMap"]["content"]
    assert 'url = "http://loki.monitoring.svc:3100/loki/api/v1/push"' in content
    assert 'names = ["atlas"]' in content
    assert "{{" not in content  # the chart passes the content through tpl
    assert alloy["controller"]["type"] == "deployment"


def test_check_mode_writes_nothing_and_says_what_it_skips(dev_full):
    root, run = dev_full["root"], dev_full["run"]
    assert not (root / "cred").exists() and not (root / "repos.yaml").exists() and not (root / "check").exists()
    said = [r.get("msg", "") for r in run.results("Say that check mode has no cluster to compare with")]
    assert said and all("does not answer" in m for m in said)
    assert run.results("observability : Install or upgrade the releases")[0].get("skipped")


def test_check_mode_against_a_cluster_sends_no_write_and_generates_no_password(tmp_path):
    extra = {"atlas_build_dir": str(tmp_path / "build"), "atlas_credentials_dir": str(tmp_path / "cred")}
    with KubeApi() as api:
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "atlas"}})
        env = {
            "K8S_AUTH_KUBECONFIG": api.kubeconfig(tmp_path / "kubeconfig", context="atlas-dev"),
            "HELM_REPOSITORY_CONFIG": str(tmp_path / "repos.yaml"),
        }
        run = run_playbook(DEPLOY, "dev", extra, env=env, args=["--check"])
        writes = [r for r in api.requests if r.method != "GET" and r.q("dryRun") != "All"]
        assert api.errors == [], api.errors[0]

    assert run.rc == 0, run.failure_messages()
    assert writes == [], [(r.method, r.path) for r in writes]
    assert not (tmp_path / "cred").exists() and not (tmp_path / "repos.yaml").exists()
    said = " ".join(r.get("msg", "") for r in run.results("Say which releases check mode cannot compare"))
    for name, version in (("kube-prometheus-stack", "88.5.3"), ("loki", "18.11.0"), ("alloy", "1.11.1")):
        assert f"{name} {version} is not compared" in said, said
    assert run.results("Say what check mode cannot try in a new namespace")[0]["msg"].startswith(
        "check mode: the namespace"
    )


def _grafana_run(api: KubeApi, tmp_path, **extra) -> PlaybookRun:
    """A real deploy whose chart repositories are unreachable (a closed local port): everything before them runs."""
    closed = "http://127.0.0.1:9"
    parts = {p: {"repo_url": closed} for p in ("kube_prometheus_stack", "loki", "alloy")}
    extra = {
        "atlas_build_dir": str(tmp_path / "build"),
        "atlas_credentials_dir": str(tmp_path / "cred"),
        "atlas_observability": parts,
        # The gateway controller comes first and from Docker Hub: off here (tests/provisioning/test_gateway.py).
        "gateway_enabled": False,
        **extra,
    }
    env = {
        "K8S_AUTH_KUBECONFIG": api.kubeconfig(tmp_path / "kubeconfig", context="atlas-dev"),
        "HELM_REPOSITORY_CONFIG": str(tmp_path / "repos.yaml"),
    }
    return run_playbook(DEPLOY, "dev", extra, env=env)


def test_grafana_password_is_generated_once_into_its_secret_and_never_shown(tmp_path):
    with KubeApi() as api:
        first = _grafana_run(api, tmp_path)
        [secret] = [s for s in api.objects("Secret", "monitoring") if s["metadata"]["name"] == "grafana-admin"]
        again = _grafana_run(api, tmp_path)
        [secret_again] = [s for s in api.objects("Secret", "monitoring") if s["metadata"]["name"] == "grafana-admin"]
        assert api.errors == [], api.errors[0]

    stored = (tmp_path / "cred" / "grafana-admin").read_text().strip()
    assert len(stored) == 32 and stored.isalnum()
    assert base64.b64decode(secret["data"]["admin-password"]).decode() == stored
    assert base64.b64decode(secret["data"]["admin-user"]).decode() == "admin"
    assert secret_again["data"] == secret["data"]  # the second run reused the file
    assert [r.get("changed") for r in again.results("Create the Grafana admin Secret")] == [False]
    for run in (first, again):
        # It stopped at the unreachable repositories, after the Secret, before any release; the password is in
        # no output.
        assert run.rc != 0
        assert "observability : Add the chart repositories" in run.tasks_run()
        assert stored not in run.stderr and stored not in str(run.report)
        assert not run.results("observability : Install or upgrade the releases") or all(
            r.get("skipped") for r in run.results("observability : Install or upgrade the releases")
        )


def test_secret_tasks_are_no_log():
    with open(f"{REPO_ROOT}/roles/observability/tasks/present.yml") as fh:
        tasks = {t["name"]: t for t in yaml.safe_load(fh)[3]["block"]}
    for name in ("Check the existing Grafana admin Secret", "Create the Grafana admin Secret"):
        assert tasks[name]["no_log"] is True, name


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ({"atlas_profile": "ephemeral"}, "atlas_profiles.ephemeral.observability"),
        ({"atlas_observability": {"enabled": False}}, "atlas_observability.enabled"),
    ],
    ids=["profile-ephemeral", "enabled-false"],
)
def test_disabled_stack_runs_no_task_and_asks_the_cluster_nothing(given, why, tmp_path):
    """--tags observability: the settings and the stack only. Off, not one request reaches the API server."""
    extra = {"atlas_build_dir": str(tmp_path / "build"), "atlas_credentials_dir": str(tmp_path / "cred"), **given}
    with KubeApi() as api:
        env = {"K8S_AUTH_KUBECONFIG": api.kubeconfig(tmp_path / "kubeconfig", context="atlas-dev")}
        run = run_playbook(DEPLOY, "dev", extra, env=env, args=["--tags", "observability"])
        requests = [(r.method, r.path) for r in api.requests]
        assert api.errors == [], api.errors[0]

    assert run.rc == 0, run.failure_messages()
    assert requests == []
    stack_tasks = [t for t in run.tasks_run() if t.startswith("observability : ") and "arg spec" not in t]
    assert stack_tasks == [
        "observability : Say that the monitoring stack is off",
        "observability : Install the monitoring stack",
    ]
    [include] = run.results("observability : Install the monitoring stack")
    assert include.get("skipped"), include
    [said] = run.results("observability : Say that the monitoring stack is off")
    assert said["msg"].startswith(f"The monitoring stack is off ({why} is false)")
    assert not (tmp_path / "cred").exists() and not (tmp_path / "build").exists()


def test_enabled_stack_is_what_tags_observability_asks_the_cluster_about(tmp_path):
    """The counterpart, so that the test above can fail: on, the same run asks the API server."""
    extra = {"atlas_build_dir": str(tmp_path / "build"), "atlas_credentials_dir": str(tmp_path / "cred")}
    with KubeApi() as api:
        env = {
            "K8S_AUTH_KUBECONFIG": api.kubeconfig(tmp_path / "kubeconfig", context="atlas-dev"),
            "HELM_REPOSITORY_CONFIG": str(tmp_path / "repos.yaml"),
        }
        run = run_playbook(DEPLOY, "dev", extra, env=env, args=["--tags", "observability", "--check"])
        paths = [r.path for r in api.requests]

    assert run.rc == 0, run.failure_messages()
    assert any(p.endswith("/namespaces/monitoring") for p in paths), paths


def test_prod_with_the_example_vault_stops_on_the_grafana_password_before_the_cluster(tmp_path):
    with open(f"{REPO_ROOT}/inventories/prod/group_vars/all/vault.yml.example") as fh:
        example = yaml.safe_load(fh)
    run = run_playbook(DEPLOY, "prod", {**example, "atlas_build_dir": str(tmp_path)})

    assert run.rc != 0
    [message] = run.failure_messages()
    assert message.startswith("atlas_grafana_admin_password: missing or still the example placeholder")
    assert "vault_atlas_grafana_admin_password" in message
    assert not [t for t in run.tasks_run() if "Ask the cluster" in t]


BAD = {
    "misspelt key": ({"enabeld": True}, "atlas_observability.enabeld: unknown setting; did you mean enabled?"),
    "misspelt nested key": (
        {"loki": {"chart_verison": "18.11.0"}},
        "atlas_observability.loki.chart_verison: unknown setting; did you mean chart_version?",
    ),
    "misspelt part": ({"lokki": {}}, "atlas_observability.lokki: unknown setting; did you mean loki?"),
    "version range": (
        {"alloy": {"chart_version": "^1.11"}},
        "atlas_observability.alloy.chart_version: '^1.11' is not one chart version",
    ),
    "bad namespace": (
        {"namespace": "Monitoring"},
        "atlas_observability.namespace: 'Monitoring' is not a lowercase DNS label",
    ),
    "enabled not a bool": ({"enabled": "yes"}, "atlas_observability.enabled: must be true, false or null"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_stack_setting_stops_before_anything_is_written(case, tmp_path):
    given, expected = BAD[case]
    run = run_playbook(RENDER, "dev", {"atlas_observability": given, "atlas_build_dir": str(tmp_path / "b")})

    assert run.rc != 0
    assert any(expected in m for m in run.failure_messages()), run.failure_messages()
    assert not (tmp_path / "b").exists()


def test_misspelt_stack_variable_names_the_closest(tmp_path):
    run = run_playbook(RENDER, "dev", {"atlas_observabilty": {"enabled": False}, "atlas_build_dir": str(tmp_path)})

    assert run.rc != 0
    assert "atlas_observabilty: unknown setting; did you mean atlas_observability?" in "\n".join(run.failure_messages())


# The profile's observability flag and the chart's switches, through render.yml (no cluster).
@pytest.mark.parametrize(
    ("inventory", "profile", "on"),
    [
        ("dev", "full", True),
        ("dev", "ephemeral", False),
        ("dev", "users-only", False),
        ("test", None, False),
        ("prod", None, True),
    ],
)
def test_profile_turns_the_chart_metrics_on_or_off(inventory, profile, on, tmp_path):
    extra = {"atlas_build_dir": str(tmp_path / "b"), **({"atlas_profile": profile} if profile else {})}
    run = run_playbook(RENDER, inventory, extra)
    assert run.rc == 0, run.failure_messages()

    with open(tmp_path / "b" / "values.yaml") as fh:
        values = yaml.safe_load(fh)
    kinds = {d["kind"] for d in _manifests(tmp_path / "b")}
    for switch in ("serviceMonitor", "prometheusRule", "dashboards"):
        assert values.get("metrics", {}).get(switch, {}).get("enabled", False) is on, switch
    for service in ("users", "projects"):
        if values[service]["enabled"]:
            assert values[service]["postgresql"].get("metrics", {}).get("enabled", False) is on, service
    assert ("ServiceMonitor" in kinds) is on and ("PrometheusRule" in kinds) is on
    dashboards = [d for d in _manifests(tmp_path / "b") if d["metadata"].get("labels", {}).get("grafana_dashboard")]
    assert bool(dashboards) is on
    if on:  # Prometheus is let in from the stack's namespace only
        selector = values["metrics"]["serviceMonitor"]["networkPolicy"]["namespaceSelector"]
        assert selector == {"kubernetes.io/metadata.name": "monitoring"}


def test_stack_turned_on_for_a_light_profile_turns_its_metrics_on(tmp_path):
    extra = {
        "atlas_build_dir": str(tmp_path / "b"),
        "atlas_profile": "users-only",
        "atlas_observability": {"enabled": True},
    }
    run = run_playbook(RENDER, "dev", extra)
    assert run.rc == 0, run.failure_messages()
    assert "ServiceMonitor" in {d["kind"] for d in _manifests(tmp_path / "b")}


def test_stack_off_keeps_the_profiles_metrics_for_another_operator(tmp_path):
    """prod with its own Prometheus Operator: atlas_observability.enabled false, the chart's metrics stay on, and
    the NetworkPolicies let Prometheus in from any namespace (the chart's default)."""
    extra = {"atlas_build_dir": str(tmp_path / "b"), "atlas_observability": {"enabled": False}}
    run = run_playbook(RENDER, "prod", extra)
    assert run.rc == 0, run.failure_messages()
    with open(tmp_path / "b" / "values.yaml") as fh:
        values = yaml.safe_load(fh)
    assert values["metrics"]["serviceMonitor"]["enabled"] is True
    assert "networkPolicy" not in values["metrics"]["serviceMonitor"]


# Preflight: the stack's memory, with stand-in docker and minikube.
@pytest.fixture
def laptop(tmp_path):
    standins = Standins(tmp_path / "standins")
    yield standins
    standins.remove()


def test_preflight_gives_minikube_the_stacks_memory_and_says_so(laptop):
    run = run_playbook("playbooks/bootstrap.yml", "dev", env=laptop.env())

    assert run.rc == 0, run.failure_messages()
    [start] = laptop.calls("minikube", "start")
    assert start[start.index("--memory") + 1] == "6144mb"
    [said] = run.results("Say how much memory the node gets")
    assert said["msg"].startswith("preflight: Minikube gets 6144 MiB (minikube_memory_mb; at least 6144:")
    assert "the monitoring stack is on (atlas_profiles.full.observability)" in said["msg"]


def test_preflight_refuses_too_little_memory_for_the_stack_before_minikube(laptop):
    run = run_playbook("playbooks/bootstrap.yml", "dev", {"minikube_memory_mb": "4096"}, env=laptop.env())

    assert run.rc != 0
    [message] = run.failure_messages()
    assert message.startswith("minikube_cpus must be >= 2 and minikube_memory_mb >= 6144 (the monitoring stack is on")
    assert "atlas_observability.minikube_memory_mb" in message and "got 2 and 4096" in message
    assert laptop.calls("minikube") == []


def test_preflight_without_the_stack_keeps_4096(laptop):
    run = run_playbook("playbooks/bootstrap.yml", "dev", {"atlas_profile": "ephemeral"}, env=laptop.env())

    assert run.rc == 0, run.failure_messages()
    [start] = laptop.calls("minikube", "start")
    assert start[start.index("--memory") + 1] == "4096mb"
    assert run.results("Say how much memory the node gets")[0].get("skipped")


def test_stack_values_name_their_pinned_sources():
    """Every pinned version in the settings is the one its comment names the upstream tag of."""
    with open(f"{REPO_ROOT}/group_vars/all/observability.yml") as fh:
        text = fh.read()
    defaults = yaml.safe_load(text)["atlas_observability_defaults"]
    tags = {
        "kube_prometheus_stack": "tag kube-prometheus-stack-{}",
        "loki": "tag loki-{}",
        "alloy": "tag helm-chart/{}",
    }
    for part, tag in tags.items():
        assert tag.format(defaults[part]["chart_version"]) in text, part
    assert os.path.exists(f"{REPO_ROOT}/roles/observability/templates/atlas-logs.alloy.j2")
