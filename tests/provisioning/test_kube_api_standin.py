"""The stand-in Kubernetes API server (tests/support/kube_api.py), driven by the real clients.

Real: ansible-playbook and the kubernetes.core 6.2.0 modules k8s_info, k8s and k8s_exec with the
`kubernetes` 37.0.2 client, discovery cache included; the HTTP and websocket exchanges they make.
Stand-in: the Kubernetes v1.32 apiserver (what each answer is based on is listed in kube_api.py).
The first tests drive it through playbooks; the rest talk HTTP to it directly (fast) to pin the
answers the playbook tests rely on.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request

import pytest
import yaml

from tests.provisioning.ansible_run import PlaybookRun, run_playbook
from tests.support.kube_api import KubeApi, PodNotFound

pytestmark = pytest.mark.logic

CONTEXT = "atlas-dev"  # Minikube's context is its profile name (inventories/dev)
NS = "atlas"


@pytest.fixture
def kube():
    with KubeApi() as api:
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        yield api
        assert api.errors == [], api.errors[0]
    # kubernetes.core's discovery cache for this server (k8srcp-<sha256(url-user)>.json) is gone with it.
    assert not [p for p in api.discovery_cache_files() if p.exists()]


def _play(api: KubeApi, tmp_path, tasks: list[dict], name: str = "play") -> PlaybookRun:
    """Run tasks (each with context: atlas-dev) on the atlas group against the stand-in."""
    for task in tasks:
        module = next(k for k in task if k.startswith("kubernetes.core."))
        task[module].setdefault("context", CONTEXT)
    playbook = tmp_path / f"{name}.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "atlas", "gather_facts": False, "tasks": tasks}], sort_keys=False))
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig", context=CONTEXT)
    return run_playbook(str(playbook), "dev", env={"K8S_AUTH_KUBECONFIG": kubeconfig})


def _results(run: PlaybookRun) -> dict[str, dict]:
    """Task name -> the localhost result."""
    return {t["task"]["name"]: t["hosts"]["localhost"] for play in run.report["plays"] for t in play["tasks"]}


def _http(api: KubeApi, method: str, path: str, body=None, content_type="application/json"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(api.url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, raw
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _json(api: KubeApi, method: str, path: str, body=None, content_type="application/json"):
    status, raw = _http(api, method, path, body, content_type)
    return status, json.loads(raw)


# --- through ansible-playbook and kubernetes.core ---------------------------------------------------------


def test_k8s_info_lists_pods_by_label_and_field_selector(kube, tmp_path):
    kube.add(
        KubeApi.pod(
            "users-0", NS, labels={"app.kubernetes.io/instance": "atlas", "app.kubernetes.io/component": "users"}
        )
    )
    kube.add(
        KubeApi.pod(
            "users-1",
            NS,
            labels={"app.kubernetes.io/instance": "atlas", "app.kubernetes.io/component": "users"},
            phase="Pending",
            ready=False,
        )
    )
    kube.add(
        KubeApi.pod(
            "projects-0", NS, labels={"app.kubernetes.io/instance": "atlas", "app.kubernetes.io/component": "projects"}
        )
    )
    task = {
        "kubernetes.core.k8s_info": {
            "kind": "Pod",
            "namespace": NS,
            "label_selectors": ["app.kubernetes.io/instance=atlas", "app.kubernetes.io/component=users"],
            "field_selectors": ["status.phase=Running"],
        },
        "name": "pods",
    }
    run = _play(kube, tmp_path, [task])

    assert run.rc == 0, run.failure_messages()
    [pod] = _results(run)["pods"]["resources"]
    assert pod["metadata"]["name"] == "users-0"
    # The apiserver leaves kind/apiVersion out of list items; the client puts the List's back in.
    assert (pod["kind"], pod["apiVersion"]) == ("Pod", "v1")
    [listed] = kube.requests_for("GET", f"/api/v1/namespaces/{NS}/pods")
    assert listed.q("labelSelector") == "app.kubernetes.io/instance=atlas,app.kubernetes.io/component=users"
    assert listed.q("fieldSelector") == "status.phase=Running"
    # A cold discovery cache: /version, /apis, then the core group version the kind lives in; kept on disk.
    assert [r.path for r in kube.requests[:3]] == ["/version", "/apis", "/api/v1"]
    assert [p.name[:7] for p in kube.discovery_cache_files() if p.exists()] == ["k8srcp-"]


def test_k8s_info_waits_until_the_pod_turns_ready_on_the_third_get(kube, tmp_path):
    pending, ready = KubeApi.pod("users-0", NS, ready=False), KubeApi.pod("users-0", NS)
    kube.on_get("Pod", NS, "users-0", [pending, pending, ready])
    wait = {"wait": True, "wait_sleep": 1, "wait_timeout": 20, "wait_condition": {"type": "Ready", "status": "True"}}
    task = {"name": "wait", "kubernetes.core.k8s_info": {"kind": "Pod", "namespace": NS, "name": "users-0", **wait}}
    run = _play(kube, tmp_path, [task])

    assert run.rc == 0, run.failure_messages()
    [pod] = _results(run)["wait"]["resources"]
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"
    # One GET to find it, then one per check until the condition holds.
    assert len(kube.requests_for("GET", f"/api/v1/namespaces/{NS}/pods/users-0")) == 3


def test_a_pod_that_vanishes_during_the_wait_crashes_k8s_info(kube, tmp_path):
    """kubernetes.core 6.2.0: the waiter hands None (the 404) to the wait_condition predicate, which reads
    .status of it. A pod replaced during a rollout does this to a wait on its name."""
    kube.on_get("Pod", NS, "users-0", [KubeApi.pod("users-0", NS, ready=False), None])
    wait = {"wait": True, "wait_sleep": 1, "wait_timeout": 20, "wait_condition": {"type": "Ready", "status": "True"}}
    task = {"name": "wait", "kubernetes.core.k8s_info": {"kind": "Pod", "namespace": NS, "name": "users-0", **wait}}
    run = _play(kube, tmp_path, [task])

    assert run.rc != 0
    [msg] = run.failure_messages()
    assert "'NoneType' object has no attribute 'status'" in msg
    assert [r.status for r in kube.requests_for("GET", f"/api/v1/namespaces/{NS}/pods/users-0")] == [200, 404]
    assert kube.get("Pod", NS, "users-0") is None


def test_k8s_creates_a_namespace_and_a_secret_and_a_second_run_changes_nothing(kube, tmp_path):
    def tasks():
        return [
            {
                "name": "namespace",
                "kubernetes.core.k8s": {
                    "state": "present",
                    "definition": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "atlas-test"}},
                },
            },
            {
                "name": "secret",
                "kubernetes.core.k8s": {
                    "state": "present",
                    "definition": {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": "db", "namespace": "atlas-test"},
                        "stringData": {"password": "hunter2"},
                    },
                },
            },
        ]

    first = _play(kube, tmp_path, tasks())
    assert first.rc == 0, first.failure_messages()
    assert first.changed() == 2
    assert [r.method for r in kube.requests if r.path.startswith("/api/v1/namespaces")] == [
        "GET",
        "POST",
        "GET",
        "POST",
    ]
    secret = kube.get("Secret", "atlas-test", "db")
    assert secret["data"] == {"password": base64.b64encode(b"hunter2").decode()} and "stringData" not in secret
    assert secret["type"] == "Opaque"
    namespace = kube.get("Namespace", None, "atlas-test")
    assert namespace["metadata"]["labels"] == {"kubernetes.io/metadata.name": "atlas-test"}

    kube.clear_requests()
    second = _play(kube, tmp_path, tasks())
    assert second.rc == 0, second.failure_messages()
    assert second.changed() == 0
    patches = kube.requests_for("PATCH")
    assert [(r.path, r.content_type) for r in patches] == [
        ("/api/v1/namespaces/atlas-test", "application/strategic-merge-patch+json"),
        ("/api/v1/namespaces/atlas-test/secrets/db", "application/strategic-merge-patch+json"),
    ]
    assert (
        kube.get("Secret", "atlas-test", "db")["metadata"]["resourceVersion"] == secret["metadata"]["resourceVersion"]
    )
    assert {r["method"] for r in _results(second).values()} == {"update"}


def test_k8s_server_side_apply_is_idempotent(kube, tmp_path):
    def task():
        return {
            "name": "apply",
            "kubernetes.core.k8s": {
                "state": "present",
                "apply": True,
                "server_side_apply": {"field_manager": "atlas"},
                "definition": {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "settings", "namespace": NS},
                    "data": {"LOG_LEVEL": "info"},
                },
            },
        }

    first = _play(kube, tmp_path, [task()])
    assert first.rc == 0, first.failure_messages()
    assert first.changed() == 1
    assert [(r.method, r.status) for r in kube.requests if "settings" in r.path or r.method != "GET"] == [
        ("GET", 404),
        ("GET", 404),
        ("PATCH", 201),
    ]
    [apply] = kube.requests_for("PATCH")
    assert apply.content_type == "application/apply-patch+yaml" and apply.q("fieldManager") == "atlas"
    assert apply.status == 201

    kube.clear_requests()
    second = _play(kube, tmp_path, [task()])
    assert second.rc == 0, second.failure_messages()
    assert second.changed() == 0
    # k8s GETs the object, then k8s_apply GETs it again before the apply PATCH.
    assert [(r.method, r.status) for r in kube.requests] == [("GET", 200), ("GET", 200), ("PATCH", 200)]


@pytest.mark.slow  # each k8s_exec run imports kubernetes.client.apis: ~8 s of CPU (client 37's models)
def test_k8s_exec_returns_stdout_and_exit_codes_and_reports_a_missing_pod(kube, tmp_path):
    kube.add(KubeApi.pod("users-0", NS, containers=["users"]))
    seen = []

    def handler(command):
        seen.append(command)
        if command[-1] == "fail":
            return b"", b"Traceback: boom\n", 3
        return b'{"connected": true}', b"", 0

    kube.on_exec(NS, "users-0", "users", handler)
    exec_args = {"namespace": NS, "pod": "users-0", "container": "users"}
    tasks = [
        {"name": "ok", "kubernetes.core.k8s_exec": {**exec_args, "command": "python -c 'print(1)'"}},
        {"name": "nonzero", "kubernetes.core.k8s_exec": {**exec_args, "command": "sh -c fail"}, "failed_when": False},
        {
            "name": "missing",
            "kubernetes.core.k8s_exec": {"namespace": NS, "pod": "users-9", "command": "true"},
            "failed_when": False,
        },
    ]
    run = _play(kube, tmp_path, tasks)

    assert run.rc == 0, run.failure_messages()
    results = _results(run)
    assert (results["ok"]["stdout"], results["ok"]["rc"]) == ('{"connected": true}', 0)
    assert seen[0] == ["python", "-c", "print(1)"]  # shlex-split by k8s_exec, one command= per word
    assert (results["nonzero"]["rc"], results["nonzero"]["stderr"]) == (3, "Traceback: boom\n")
    missing = results["missing"]["msg"]
    assert missing.startswith("Failed to execute on pod users-9 due to : (0)\nReason: Handshake status 404 Not Found")
    assert '"message":"pods \\"users-9\\" not found","reason":"NotFound"' in missing
    # Without a container, k8s_exec first GETs the pod (404, ignored), then tries the exec anyway.
    assert [r.status for r in kube.requests if "users-9" in r.path] == [404, 404]
    [ok_exec, *_] = kube.requests_for("GET", f"/api/v1/namespaces/{NS}/pods/users-0/exec")
    assert ok_exec.status == 101 and ok_exec.headers["sec-websocket-protocol"] == "v5.channel.k8s.io,v4.channel.k8s.io"


def test_k8s_info_waits_for_a_rolled_out_deployment(kube, tmp_path):
    kube.add(KubeApi.deployment("users", NS, replicas=2))
    kube.add(KubeApi.deployment("projects", NS, replicas=2, available=1))
    wait = {"wait": True, "wait_sleep": 1}
    tasks = [
        {
            "name": "rolled out",
            "kubernetes.core.k8s_info": {
                "kind": "Deployment",
                "api_version": "apps/v1",
                "namespace": NS,
                "name": "users",
            }
            | wait
            | {"wait_timeout": 10},
        },
        {
            "name": "rolling",
            "kubernetes.core.k8s_info": {
                "kind": "Deployment",
                "api_version": "apps/v1",
                "namespace": NS,
                "name": "projects",
            }
            | wait
            | {"wait_timeout": 2},
            "ignore_errors": True,
        },
    ]
    run = _play(kube, tmp_path, tasks)

    results = _results(run)
    assert results["rolled out"]["resources"][0]["status"]["availableReplicas"] == 2
    assert results["rolling"]["failed"]
    assert results["rolling"]["msg"].startswith(
        "Failed to gather information about Deployment(s) even after waiting for"
    )
    assert len(kube.requests_for("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/users")) == 2


def test_a_missing_object_is_the_apiservers_not_found_and_k8s_info_returns_no_resources(kube, tmp_path):
    status, raw = _http(kube, "GET", f"/api/v1/namespaces/{NS}/pods/x")
    assert status == 404
    assert raw == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \\"x\\" not found",'
        b'"reason":"NotFound","details":{"name":"x","kind":"pods"},"code":404}\n'
    )
    task = {"name": "info", "kubernetes.core.k8s_info": {"kind": "Pod", "namespace": NS, "name": "x"}}
    run = _play(kube, tmp_path, [task])

    assert run.rc == 0, run.failure_messages()
    result = _results(run)["info"]
    assert (result["resources"], result["api_found"]) == ([], True)


# --- HTTP straight to the stand-in ------------------------------------------------------------------------


def test_discovery_answers(kube):
    status, raw = _http(kube, "GET", "/version")
    assert status == 200 and raw.startswith(b'{\n  "major": "1",\n  "minor": "32"')
    assert json.loads(raw)["gitVersion"] == "v1.32.0"
    _, groups = _json(kube, "GET", "/apis")
    names = [g["name"] for g in groups["groups"]]
    assert {"apps", "batch", "networking.k8s.io", "policy", "autoscaling"} <= set(names)
    autoscaling = next(g for g in groups["groups"] if g["name"] == "autoscaling")
    assert autoscaling["preferredVersion"] == {"groupVersion": "autoscaling/v2", "version": "v2"}
    _, core = _json(kube, "GET", "/api/v1")
    assert "apiVersion" not in core and core["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"]["shortNames"] == ["po"] and by_name["pods/exec"]["verbs"] == ["create", "get"]
    assert by_name["namespaces"]["namespaced"] is False and "deletecollection" not in by_name["namespaces"]["verbs"]
    _, apps = _json(kube, "GET", "/apis/apps/v1")
    assert {r["name"] for r in apps["resources"]} >= {
        "deployments",
        "statefulsets",
        "replicasets",
        "deployments/status",
    }
    _, batch = _json(kube, "GET", "/apis/batch/v1")
    assert {r["kind"] for r in batch["resources"]} == {"CronJob", "Job"}
    assert _json(kube, "GET", "/apis/example.com/v1")[0] == 404


def test_each_instance_has_its_own_discovery_cache_and_removes_it(tmp_path):
    import kubernetes
    from kubernetes.dynamic import DynamicClient

    with KubeApi() as one, KubeApi() as two:
        assert one.url != two.url  # the cache key includes the server URL
        client = kubernetes.config.new_client_from_config(config_file=one.kubeconfig(tmp_path / "kc"), context=CONTEXT)
        DynamicClient(client).resources.get(api_version="apps/v1", kind="Deployment")
        caches = [p for p in one.discovery_cache_files() if p.exists()]
        assert caches and not set(caches) & set(two.discovery_cache_files())
    assert not any(p.exists() for p in caches)


def test_label_selector_operators(kube):
    for name, labels in {"a": {"tier": "web", "env": "dev"}, "b": {"tier": "db"}, "c": {"env": "prod"}}.items():
        kube.add(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS, "labels": labels}}
        )

    def names(selector):
        status, body = _json(
            kube, "GET", f"/api/v1/namespaces/{NS}/configmaps?labelSelector={urllib.parse.quote(selector)}"
        )
        assert status == 200, body
        return [i["metadata"]["name"] for i in body["items"]]

    assert names("tier=web") == ["a"]
    assert names("tier==web,env=dev") == ["a"]
    assert names("tier!=web") == ["b", "c"]  # != matches objects without the label
    assert names("tier in (web,db)") == ["a", "b"]
    assert names("tier notin (web)") == ["b", "c"]
    assert names("env") == ["a", "c"]
    assert names("!env") == ["b"]


def test_field_selectors_and_their_errors(kube):
    kube.add(KubeApi.pod("run", NS))
    kube.add(KubeApi.pod("wait", NS, phase="Pending", ready=False))
    _, body = _json(kube, "GET", f"/api/v1/namespaces/{NS}/pods?fieldSelector=status.phase%3DRunning")
    assert [i["metadata"]["name"] for i in body["items"]] == ["run"]
    assert body["kind"] == "PodList" and "kind" not in body["items"][0] and body["metadata"]["resourceVersion"]
    _, body = _json(kube, "GET", f"/api/v1/namespaces/{NS}/pods?fieldSelector=metadata.name!%3Drun")
    assert [i["metadata"]["name"] for i in body["items"]] == ["wait"]
    status, body = _json(kube, "GET", f"/api/v1/namespaces/{NS}/pods?fieldSelector=status.podReady%3Dtrue")
    assert (status, body["reason"], body["message"]) == (
        400,
        "BadRequest",
        "field label not supported: status.podReady",
    )
    status, body = _json(kube, "GET", f"/api/v1/namespaces/{NS}/configmaps?fieldSelector=data.x%3D1")
    assert body["message"] == '"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"'


def test_create_conflicts_and_missing_namespaces(kube):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    status, created = _json(kube, "POST", f"/api/v1/namespaces/{NS}/configmaps", cm)
    assert status == 201
    meta = created["metadata"]
    assert meta["namespace"] == NS and meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
    assert "generation" not in meta  # ConfigMaps have none; Deployments start at 1
    status, body = _json(kube, "POST", f"/api/v1/namespaces/{NS}/configmaps", cm)
    assert (status, body["reason"], body["message"]) == (409, "AlreadyExists", 'configmaps "c" already exists')
    status, body = _json(kube, "POST", "/api/v1/namespaces/nowhere/configmaps", cm)
    assert (status, body["message"], body["details"]) == (
        404,
        'namespaces "nowhere" not found',
        {"name": "nowhere", "kind": "namespaces"},
    )
    status, body = _json(kube, "GET", f"/apis/apps/v1/namespaces/{NS}/deployments/web")
    assert body["message"] == 'deployments.apps "web" not found'
    assert body["details"] == {"name": "web", "group": "apps", "kind": "deployments"}


def test_dry_run_changes_nothing(kube):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    status, created = _json(kube, "POST", f"/api/v1/namespaces/{NS}/configmaps?dryRun=All", cm)
    assert status == 201 and "resourceVersion" not in created["metadata"]
    assert kube.get("ConfigMap", NS, "c") is None
    kube.add({**cm, "metadata": {"name": "c", "namespace": NS}})
    rv = kube.get("ConfigMap", NS, "c")["metadata"]["resourceVersion"]
    path = f"/api/v1/namespaces/{NS}/configmaps/c"
    status, patched = _json(kube, "PATCH", path + "?dryRun=All", {"data": {"k": "w"}}, "application/merge-patch+json")
    assert (status, patched["data"], patched["metadata"]["resourceVersion"]) == (200, {"k": "w"}, rv)
    assert _json(kube, "DELETE", path + "?dryRun=All")[0] == 200
    assert kube.get("ConfigMap", NS, "c")["data"] == {"k": "v"}


def test_updates_follow_the_registry_strategies(kube):
    kube.add(KubeApi.deployment("web", NS, replicas=1))
    before = kube.get("Deployment", NS, "web")
    path = f"/apis/apps/v1/namespaces/{NS}/deployments/web"
    smp = "application/strategic-merge-patch+json"
    # A patch that changes nothing writes nothing: same resourceVersion, same generation.
    _, same = _json(kube, "PATCH", path, {"spec": {"replicas": 1}}, smp)
    assert same["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    # A spec change bumps generation; status cannot be written through the main resource.
    _, scaled = _json(kube, "PATCH", path, {"spec": {"replicas": 3}, "status": {"replicas": 9}}, smp)
    assert scaled["metadata"]["generation"] == 2 and scaled["status"] == before["status"]
    # ...but through /status it can.
    _, status = _json(
        kube, "PATCH", path + "/status", {"status": {"observedGeneration": 2}}, "application/merge-patch+json"
    )
    assert status["status"]["observedGeneration"] == 2 and status["metadata"]["generation"] == 2
    # A stale resourceVersion is a conflict.
    stale = {"metadata": {"resourceVersion": before["metadata"]["resourceVersion"]}, "spec": {"replicas": 1}}
    code, body = _json(kube, "PATCH", path, stale, "application/merge-patch+json")
    assert (code, body["reason"]) == (409, "Conflict")
    assert body["message"].startswith(
        'Operation cannot be fulfilled on deployments.apps "web": the object has been modified'
    )
    # PUT replaces; creating one through POST clears its status and starts generation at 1.
    new = KubeApi.deployment("api", NS)
    code, created = _json(kube, "POST", f"/apis/apps/v1/namespaces/{NS}/deployments", new)
    assert (code, created["status"], created["metadata"]["generation"]) == (201, {}, 1)


def test_apply_patches(kube):
    path = f"/api/v1/namespaces/{NS}/configmaps/c"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    code, err = _json(kube, "PATCH", path, body, "application/apply-patch+yaml")
    assert (code, err["reason"]) == (422, "Invalid")
    assert (
        err["message"]
        == 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
    )
    assert _json(kube, "PATCH", path + "?fieldManager=t", body, "application/apply-patch+yaml")[0] == 201
    code, applied = _json(
        kube, "PATCH", path + "?fieldManager=t", {**body, "data": {"b": "2"}}, "application/apply-patch+yaml"
    )
    assert (code, applied["data"]) == (200, {"a": "1", "b": "2"})  # merged (simplified: no field ownership)
    assert _json(kube, "PATCH", path, {"data": {}}, "application/json")[0] == 415


def test_deletes(kube):
    kube.add(KubeApi.pod("p", NS))
    kube.add({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": NS}})
    code, pod = _json(kube, "DELETE", f"/api/v1/namespaces/{NS}/pods/p")
    assert (code, pod["kind"]) == (200, "Pod")  # pods answer with the deleted object
    uid = kube.get("Secret", NS, "s")["metadata"]["uid"]
    code, status = _json(kube, "DELETE", f"/api/v1/namespaces/{NS}/secrets/s")
    assert (code, status) == (
        200,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": "s", "kind": "secrets", "uid": uid},
        },
    )
    code, ns = _json(kube, "DELETE", f"/api/v1/namespaces/{NS}")
    assert (code, ns["status"]["phase"]) == (200, "Terminating") and ns["metadata"]["deletionTimestamp"]
    assert kube.get("Namespace", None, NS) is None and kube.objects("Pod", NS) == []
    code, body = _json(kube, "DELETE", "/api/v1/namespaces/default")
    assert (code, body["message"]) == (403, 'namespaces "default" is forbidden: this namespace may not be deleted')


def test_scripted_lists(kube):
    kube.on_list("Pod", NS, [[], [KubeApi.pod("late", NS)]])
    first = _json(kube, "GET", f"/api/v1/namespaces/{NS}/pods")[1]
    second = _json(kube, "GET", f"/api/v1/namespaces/{NS}/pods")[1]
    assert first["items"] == [] and [i["metadata"]["name"] for i in second["items"]] == ["late"]
    assert kube.get("Pod", NS, "late") is not None  # the state follows what was answered


def test_exec_protocol_details(kube):
    """The v5 translator's empty first frame and JSON status; a v4-only client gets v4; errors before the upgrade."""
    import websocket

    kube.add(KubeApi.pod("p", NS, containers=["a", "b"]))
    kube.add(KubeApi.pod("unscheduled", NS, node=None))
    kube.on_exec(NS, "p", "a", lambda cmd: (b"out", b"err", 0))

    def gone(cmd):
        raise PodNotFound

    kube.on_exec(NS, "p", "b", gone)
    ws_url = (
        kube.url.replace("http://", "ws://") + f"/api/v1/namespaces/{NS}/pods/p/exec?command=x&stdout=true&stderr=true"
    )

    def session(url, protocols):
        ws = websocket.create_connection(url, header=[f"sec-websocket-protocol: {protocols}"], timeout=5)
        frames = []
        while True:
            opcode, frame = ws.recv_data_frame(True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            frames.append((frame.data[0], frame.data[1:]))
        ws.close()
        return ws.getheaders()["sec-websocket-protocol"], frames

    proto, frames = session(ws_url + "&container=a", "v5.channel.k8s.io,v4.channel.k8s.io")
    assert proto == "v5.channel.k8s.io"
    assert frames == [(1, b""), (1, b"out"), (2, b"err"), (3, b'{"metadata":{},"status":"Success"}')]
    proto, frames = session(ws_url + "&container=a", "v4.channel.k8s.io")
    assert proto == "v4.channel.k8s.io" and frames[0] == (1, b"out")

    def refused(url):
        with pytest.raises(websocket.WebSocketBadStatusException) as caught:
            websocket.create_connection(url, header=["sec-websocket-protocol: v5.channel.k8s.io"], timeout=5)
        return caught.value.status_code, json.loads(caught.value.resp_body)["message"]

    assert refused(ws_url + "&container=b") == (404, 'pods "p" not found')
    assert refused(ws_url) == (400, "a container name must be specified for pod p, choose one of: [a b]")
    assert refused(ws_url + "&container=c") == (400, "container c is not valid for pod p")
    assert refused(ws_url.replace("/p/", "/unscheduled/")) == (400, "pod unscheduled does not have a host assigned")


def test_the_kubeconfig_names_the_context_and_a_token_user(kube, tmp_path):
    with open(kube.kubeconfig(tmp_path / "kc", context="prod")) as fh:
        config = yaml.safe_load(fh)
    assert config["current-context"] == "prod"
    assert config["clusters"][0]["cluster"]["server"] == kube.url and kube.url.startswith("http://127.0.0.1:")
    assert config["users"][0]["user"]["token"]
    assert os.path.getsize(tmp_path / "kc") > 0
