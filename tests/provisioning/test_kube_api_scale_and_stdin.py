"""What the day-2 playbooks added to the stand-in API server (tests/support/kube_api.py): the deployments/scale
subresource k8s_scale patches, exec sessions that read stdin (k8s_cp to_pod's tar), and refuse().

Talks HTTP and websocket to the stand-in directly (fast); the playbook tests (test_db_operations.py) drive the
same paths through kubernetes.core. Upstream sources of each answer are named in kube_api.py.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import websocket

from tests.support.kube_api import KubeApi

pytestmark = pytest.mark.logic

NS = "atlas"
SCALE = f"/apis/apps/v1/namespaces/{NS}/deployments/web/scale"
SMP = "application/strategic-merge-patch+json"


@pytest.fixture
def kube():
    with KubeApi() as api:
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        yield api
        assert api.errors == [], api.errors[0]


def _json(api: KubeApi, method: str, path: str, body=None, content_type="application/json"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(api.url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_discovery_lists_the_scale_subresource_as_autoscaling_v1_scale(kube):
    _, body = _json(kube, "GET", "/apis/apps/v1")
    [scale] = [r for r in body["resources"] if r["name"] == "deployments/scale"]
    # metav1.APIResource field order, as api/discovery/apis__apps__v1.json has it (keys sorted there).
    assert scale == {
        "name": "deployments/scale",
        "singularName": "",
        "namespaced": True,
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
        "verbs": ["get", "patch", "update"],
    }


def test_a_deployment_read_and_scaled_through_its_scale(kube):
    kube.add(KubeApi.deployment("web", NS, replicas=2, labels={"app": "web", "tier": "api"}))
    stored = kube.get("Deployment", NS, "web")

    code, scale = _json(kube, "GET", SCALE)
    assert code == 200
    assert (scale["kind"], scale["apiVersion"]) == ("Scale", "autoscaling/v1")
    assert scale["metadata"] == {
        k: stored["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
    }
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 2, "selector": "app=web,tier=api"}

    # What k8s_scale sends: a strategic merge patch naming the Deployment's kind, with the replicas.
    body = {"kind": "Deployment", "metadata": {"name": "web", "namespace": NS}, "spec": {"replicas": 0}}
    code, scaled = _json(kube, "PATCH", SCALE, body, SMP)
    assert code == 200 and scaled["spec"] == {}  # ScaleSpec.replicas is omitempty
    after = kube.get("Deployment", NS, "web")
    assert after["spec"]["replicas"] == 0
    assert after["metadata"]["generation"] == stored["metadata"]["generation"] + 1
    assert after["status"] == stored["status"]  # the controller's to change, not the scale's
    assert scaled["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]

    # An update with a stale resourceVersion is a conflict; a negative count is invalid; both store nothing.
    stale = {
        "metadata": {"name": "web", "resourceVersion": stored["metadata"]["resourceVersion"]},
        "spec": {"replicas": 1},
    }
    code, body = _json(kube, "PUT", SCALE, stale)
    assert (code, body["reason"]) == (409, "Conflict")
    code, body = _json(kube, "PATCH", SCALE, {"spec": {"replicas": -1}}, SMP)
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["message"] == (
        'Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'
    )
    assert kube.get("Deployment", NS, "web")["spec"]["replicas"] == 0
    code, body = _json(kube, "GET", f"/apis/apps/v1/namespaces/{NS}/deployments/none/scale")
    assert (code, body["message"]) == (404, 'deployments.apps "none" not found')


def _session(api: KubeApi, query: str, send: list[bytes], close_first: bool = False):
    """One v5 exec session: send frames (channel byte included), then read until the server's close frame."""
    url = api.url.replace("http://", "ws://") + f"/api/v1/namespaces/{NS}/pods/p/exec?{query}"
    ws = websocket.create_connection(url, header=["sec-websocket-protocol: v5.channel.k8s.io"], timeout=10)
    for frame in send:
        ws.send(frame, opcode=websocket.ABNF.OPCODE_BINARY)
    frames = []
    if close_first:  # k8s_cp to_pod: close right after the last stdin frame
        ws.close()
        return frames
    while True:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
        frames.append((frame.data[0], frame.data[1:]))
    ws.close()
    return frames


def test_an_exec_handler_reads_stdin_until_the_v5_close_signal_or_the_clients_close(kube):
    kube.add(KubeApi.pod("p", NS, containers=["c"]))
    got: list[tuple[list[str], bytes]] = []

    def tar(command, stdin):
        data = stdin.read()
        got.append((command, data))
        return data[::-1], b"", 0

    kube.on_exec(NS, "p", "c", tar, stdin=True)
    query = "command=tar&command=-xmf&command=-&container=c&stdin=true&stdout=true&stderr=true"
    big = bytes(range(256)) * 8192  # 2 MiB in one frame: the unmasking copes

    frames = _session(kube, query, [b"\x00" + b"abc", b"\x00" + big, b"\x04" + b'{"Width":80}', bytes([255, 0])])
    assert got[0] == (["tar", "-xmf", "-"], b"abc" + big)  # the resize frame (channel 4) is not stdin
    assert b"".join(d for c, d in frames if c == 1) == (b"abc" + big)[::-1]
    assert frames[-1] == (3, b'{"metadata":{},"status":"Success"}')

    _session(kube, query, [b"\x00" + b"xyz"], close_first=True)
    assert got[1] == (["tar", "-xmf", "-"], b"xyz")  # the client's close ended stdin

    # Without stdin=true there is no stdin; a handler that does not read it leaves the client's frames alone.
    frames = _session(kube, query.replace("stdin=true", "stdin=false"), [])
    assert got[2][1] == b"" and frames[-1][0] == 3
    kube.on_exec(NS, "p", "c", lambda command, stdin: (b"out", b"", 3), stdin=True)
    frames = _session(kube, query, [b"\x00" + b"ignored"])
    assert (1, b"out") in frames and json.loads(frames[-1][1])["details"]["causes"] == [
        {"reason": "ExitCode", "message": "3"}
    ]


def test_refuse_answers_the_chosen_requests_with_the_given_failure(kube):
    kube.add({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": NS}, "data": {"k": "dg=="}})
    path = f"/api/v1/namespaces/{NS}/secrets/s"
    kube.refuse("PATCH", path, 'secrets "s" is forbidden: User "u" cannot patch resource "secrets"')

    code, body = _json(kube, "PATCH", path, {"data": {"k": "dw=="}}, "application/merge-patch+json")
    assert (code, body["reason"], body["message"]) == (
        403,
        "Forbidden",
        'secrets "s" is forbidden: User "u" cannot patch resource "secrets"',
    )
    assert kube.get("Secret", NS, "s")["data"] == {"k": "dg=="}
    assert _json(kube, "GET", path)[0] == 200  # only PATCH was refused, and only once
    assert _json(kube, "PATCH", path, {"data": {"k": "dw=="}}, "application/merge-patch+json")[0] == 200
    assert [r.status for r in kube.requests] == [403, 200, 200]
