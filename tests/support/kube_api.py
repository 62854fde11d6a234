"""A stand-in Kubernetes API server (v1.32.0, what Minikube v1.35.0 runs) for the "logic" tests.

A threaded HTTP server on 127.0.0.1 that answers the requests the kubernetes.core 6.2.0 modules make
(k8s_info, k8s, k8s_exec) through the `kubernetes` Python client 37.0.2, with state the test sets up and
inspects. Ansible roles run for real against it: point K8S_AUTH_KUBECONFIG at `api.kubeconfig(path)`.

    with KubeApi() as api:
        api.add(KubeApi.pod("users-0", "atlas", labels={"app": "users"}))
        api.on_exec("atlas", "users-0", "users", lambda cmd: (b'{"ok": true}', b"", 0))
        env = {"K8S_AUTH_KUBECONFIG": api.kubeconfig(tmp_path / "kubeconfig")}
        ...  # run ansible-playbook with env
        assert [r.path for r in api.requests if r.method == "PATCH"] == []

Where each answer comes from: R = read in the upstream source named, G = guessed or recalled (not re-read).

Client side (what is asked, and how answers are parsed), read in this repository's virtualenv:
  kubernetes 37.0.2  dynamic/discovery.py (GET /version, /apis, then /api/v1 or /apis/<g>/<v> lazily, the
                     first time a kind of that group version is looked up; APIResourceList "resources",
                     "/" in a name marks a subresource; APIGroupList preferredVersion compared as a dict),
                     dynamic/client.py (query parameters: labelSelector, fieldSelector, dryRun, fieldManager,
                     force...; PATCH defaults to application/strategic-merge-patch+json),
                     dynamic/resource.py (ResourceInstance gives list items the List's apiVersion and kind,
                     because the apiserver leaves them out), client/rest.py (an apply-patch+yaml body is sent
                     as JSON), stream/stream.py + stream/ws_client.py (exec: GET .../pods/<p>/exec?command=..
                     with "sec-websocket-protocol: v5.channel.k8s.io,v4.channel.k8s.io"; frames are
                     <channel byte><data>; channel 3 is read with yaml.safe_load: status "Success" is rc 0,
                     otherwise rc = int(details.causes[0].message); a close frame ends the session; a
                     non-101 answer raises ApiException(status=0, reason="Handshake status 404 Not Found
                     -+-+- <headers> -+-+- <body>") from websocket-client 1.9.2's _handshake.py).
  kubernetes.core 6.2.0  module_utils/client/discovery.py: the discovery cache is
                     $TMPDIR/k8srcp-sha256(<host>-<user>).json, kept across runs. Each KubeApi therefore
                     serves under its own random path prefix (http://127.0.0.1:<port>/<prefix>), so no two
                     instances ever share a cache key even when the OS hands out a port again, and
                     __exit__ removes this instance's cache files. (A path prefix is what an API proxy such
                     as `kubectl proxy --api-prefix` gives; the client appends paths to the server URL.)
                     module_utils/k8s/service.py, runner.py, waiter.py: k8s_info GETs by name or LISTs with
                     selectors, then (wait) GETs each object by name every wait_sleep seconds until the
                     predicate holds (a 404 is "not there yet"; a 400 on the first LIST gives resources=[]).
                     k8s state=present: GET, then POST when absent, else PATCH strategic-merge (then merge);
                     changed = the PATCH answer differs from the GET answer beyond generation and
                     resourceVersion. apply=true: GET, POST/PATCH merge-patch with the last-applied
                     annotation; server_side_apply: PATCH application/apply-patch+yaml with fieldManager.
                     modules/k8s_exec.py: GET the pod (only when no container is given), then the exec
                     websocket; rc from channel 3; a failed upgrade is "Failed to execute on pod <p> due
                     to : <ApiException>".
                     module_utils/copy.py (k8s_cp): from_pod runs `test -e <f>`, `test -d <f>`, then
                     `cat <f>` with stdin=true, keeps the stdout frames until the close frame, fails on any
                     stderr and never reads the exit status; to_pod runs `tar -xmf - [-C /]` with
                     stdin=true, sends the archive in 1 MiB stdin frames and closes the websocket at once:
                     it neither signals the end of stdin nor waits for tar's exit status (on a real
                     cluster the copy may still be landing when the module returns).
                     modules/k8s_scale.py: GET the object, PATCH its scale subresource (strategic merge
                     {"kind", "metadata", "spec": {"replicas"}}), then, with wait, GET it until the
                     waiter's predicate holds (waiter.py deployment_ready for a Deployment).
  kubernetes 37.0.2  stream/ws_client.py: stdin is written as frames <0><data>; close_channel(c) sends
                     [255, c] (v5 only); close() sends a close frame and reads up to 3 s for the server's.

Server side (Kubernetes v1.32), in kubernetes/kubernetes. The stored copies read are not pinned to the
v1.32.0 tag; the parts used here did not change around it. Each item: R read, or G recalled/guessed.
  R api/discovery/api__v1.json, apis__apps__v1.json, apis__batch__v1.json, apis.json: names, singularName,
      namespaced, kind, verbs, shortNames, categories, storageVersionHash; the legacy /api/v1 list has no
      apiVersion. ABRIDGED: only RESOURCES/SUBRESOURCES below; the full lists are in those files.
  R /version: v1.32.0's version.Info (gitCommit 70d3cc98..., buildDate 2024-12-11T17:59:15Z, go1.23.3)
      as published `curl /version` transcripts show it, indented (routes/version.go WriteRawJSON).
  R pkg/apis/meta/v1/types.go Status field order; the NotFound body of the brief (details.kind is the
      resource, "Yes we set Kind field to resource."). G pkg/api/errors/errors.go message formats for
      AlreadyExists, Conflict ("the object has been modified; please apply..."), Invalid, Forbidden,
      InternalError ("Internal error occurred: ..."). Bodies are compact JSON plus a newline (json.Encoder).
  R pkg/apis/core/v1/conversion.go: the field selector labels of Pod, Namespace, Secret, Service and their
      "field label not supported: <label>"; Secret stringData overwrites data. G apimachinery's default
      for the other kinds ("<label>" is not a known field selector: only "metadata.name", ...), and the
      extra labels of apps/batch kinds (not modelled). G defaults.go: Secret type Opaque, Namespace label
      kubernetes.io/metadata.name.
  R pkg/registry/apps/{deployment,statefulset}/strategy.go: generation 1 on create and +1 when the spec
      (Deployment: or annotations) changes, create clears status, an update through the main resource
      keeps the old status. G the same for ReplicaSet, Job, CronJob, Ingress, PDB; the initial statuses
      of kinds other than Deployment; Namespace phase Active and the "kubernetes" finalizer.
  R ReturnDeletedObject: true for pods, serviceaccounts, namespaces (their storage.go): DELETE answers
      the object. G store.go finalizeDelete's Status Success {name, group, kind, uid} for the others, and
      which one Services and PVCs give. R namespace/storage/storage.go: the first DELETE answers the
      namespace with deletionTimestamp and phase Terminating. R registry/dryrun.go: dryRun=All runs the
      request without storing; a dry-run create has no resourceVersion, a dry-run update keeps it.
  G plugin/pkg/admission/namespace/lifecycle: creating in a missing namespace is 404 `namespaces "x" not
      found`; default, kube-system and kube-public may not be deleted (403 "this namespace may not be
      deleted").
  R apimachinery pkg/apis/meta/v1/validation ValidatePatchOptions: apply without fieldManager is
      "fieldManager: Required value: is required for apply patch" (G: wrapped by NewInvalid in a 422 for
      PatchOptions.meta.k8s.io).
  R (messages, in published kubectl output) G (the code, pod/strategy.go streamLocation): exec on a
      missing pod is 404 before any upgrade; "container <c> is not valid for pod <p>", "a container name
      must be specified for pod <p>, choose one of: [<names>]", "pod <p> does not have a host assigned"
      are 400s.
  R staging/src/k8s.io/apiserver/pkg/util/proxy/websocket.go + streamtranslator.go (v1.30+: a client
      offering v5.channel.k8s.io is served by the apiserver's stream translator, which speaks only v5):
      after the upgrade an empty frame on the lowest writable channel (stdout), then the output, then
      json.Marshal(metav1.Status) on channel 3 (no kind/apiVersion: TypeMeta is empty) - {"metadata":{},
      "status":"Success"}, or Failure/NonZeroExitCode with details.causes[{reason: ExitCode, message:
      "<n>"}] and message "command terminated with non-zero exit code: command terminated with exit code
      <n>" (the inner error from client-go tools/remotecommand/v4.go) - then a close frame; the server
      waits for the client's close. R httpstream/wsstream/conn.go: binary frames <channel byte><data>; the
      subprotocol is the client's first one the server supports. G a client offering only
      v4.channel.k8s.io or channel.k8s.io goes to the kubelet, which speaks those (v4: JSON status;
      channel.k8s.io: the plain error text, nothing on success); base64 variants are not implemented.
  R pkg/registry/apps/deployment/storage/storage.go ScaleREST, api/discovery/apis__apps__v1.json: the
      deployments/scale subresource (discovery: group autoscaling, version v1, kind Scale, verbs get,
      patch, update) is scaleFromDeployment - metadata name, namespace, uid, resourceVersion,
      creationTimestamp; spec.replicas; status.replicas and status.selector (a selector string) - and an
      update or patch of that Scale moves spec.replicas and its resourceVersion into the Deployment
      (scaleUpdatedObjectInfo), stored like any Deployment update. G ScaleSpec.replicas being omitempty
      (a Scale of 0 has spec {}), ValidateScale's message for a negative count; matchExpressions in the
      selector string; the scale subresources of ReplicaSets and StatefulSets are not served.
  G exec stdin (what kubectl exec -i and k8s_cp rely on): the container's process reads stdin frames as
      they come; the end of stdin is the v5 close signal for channel 0, or the client's close frame, or
      EOF; a client that closed first gets no exit status (its connection is gone).
  R RFC 6455: Sec-WebSocket-Accept = base64(sha1(key + 258EAFA5-E914-47DA-95CA-C5AB0DC85B11)); client
      frames are masked, server frames are not.

Simplified (the stand-in does less than the apiserver):
  no authentication/authorization (any token), no admission beyond namespace lifecycle, no validation
  (a malformed object is stored as sent), little defaulting (only what is listed above: no pod, service
  or container defaults, no qosClass beyond BestEffort/Burstable, no clusterIP), no managedFields; no
  watch (answered 500 "not implemented"), no limit/continue paging (every LIST is one page); no
  conversion between versions (an object is stored once per group and served under whichever version was
  asked); resourceVersion is one counter; a resourceVersion precondition in PUT or PATCH is checked (409),
  nothing else about it (no "too old", no resourceVersionMatch); no finalizers or graceful deletion: a
  deleted pod is gone at once (like --grace-period=0 --force) and a deleted namespace is removed with its
  contents right after the answer; strategic-merge patch is applied as a JSON merge patch (lists are
  replaced, not merged by their patchMergeKey; $patch directives are ignored); server-side apply is
  create-or-merge of the applied object (no field ownership, no conflicts, fields dropped from the
  applied object are not removed); application/json-patch+json is not implemented (500 naming that).

Guessed (marked G in the code): the messages for an unparsable label or field selector or body; the 404
body for an API path the server does not serve ("the server could not find the requested resource",
details {}); the 400s for an exec request without a command or without an upgrade; the 400 for an
unsupported subprotocol (x/net/websocket's handshake refusal was not read); pods/log answers text/plain
with what the test registered (set_log); status.podIPs is matched against the first IP; Services and
PVCs deleting to an object / a Status. LISTs come sorted by namespace and name, the order etcd's keys
give.

Stand-in specific (no apiserver equivalent): a 500 naming the stand-in for watch, JSON patch and an exec
into a pod without a registered handler; refuse(), which answers chosen requests with a given failure;
`api.errors` collects the traceback of any bug in the stand-in (also answered 500), which a test should
assert empty. Paths outside the instance's prefix get Go's "404 page not found" text and are not recorded.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import hashlib
import itertools
import json
import os
import random
import re
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

# ---------------------------------------------------------------------------------------------------------
# What the server says about itself
# ---------------------------------------------------------------------------------------------------------

# v1.32.0's /version (the published release binaries; Minikube v1.35.0's default Kubernetes version).
VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T17:59:15Z",
    "goVersion": "go1.23.3",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class ApiResource:
    """One resource type the stand-in serves (discovery entry plus the server-side behaviour it needs)."""

    group: str
    version: str
    name: str  # plural, as in URLs
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = _ALL_VERBS
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    storage_hash: str = ""
    # server-side behaviour (registry strategies, see the module docstring)
    has_status: bool = False  # a status subresource: create clears status, updates keep it
    initial_status: dict | None = None  # what create leaves in status
    generation: bool = False  # metadata.generation 1 on create, +1 when the spec changes
    returns_deleted: bool = False  # DELETE answers the object instead of a Status
    field_labels: tuple[str, ...] = ("metadata.name", "metadata.namespace")
    field_label_error: str = "default"  # "core": "field label not supported: X"; "default": apimachinery's

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """The resource as errors name it: `pods`, `deployments.apps` (schema.GroupResource.String)."""
        return f"{self.name}.{self.group}" if self.group else self.name

    def discovery(self) -> dict:
        # Field order of metav1.APIResource.
        entry: dict[str, Any] = {"name": self.name, "singularName": self.singular, "namespaced": self.namespaced}
        entry["kind"] = self.kind
        entry["verbs"] = list(self.verbs)
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        if self.storage_hash:
            entry["storageVersionHash"] = self.storage_hash
        return entry


_POD_FIELDS = (
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
)

# ABRIDGED discovery: the resources Atlas touches. Full lists: kubernetes/kubernetes api/discovery/*.json.
RESOURCES: tuple[ApiResource, ...] = (
    # core/v1 (api/discovery/api__v1.json)
    ApiResource(
        "", "v1", "configmaps", "configmap", "ConfigMap", True, short_names=("cm",), storage_hash="qFsyl6wFWjQ="
    ),
    ApiResource(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        False,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        short_names=("ns",),
        storage_hash="Q3oi5N2YM8M=",
        has_status=True,
        initial_status={"phase": "Active"},
        returns_deleted=True,
        field_labels=("metadata.name", "status.phase"),
        field_label_error="core",
    ),
    ApiResource(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        True,
        short_names=("pvc",),
        storage_hash="QWTyNDq0dC4=",
        has_status=True,
        initial_status={"phase": "Pending"},
    ),
    ApiResource(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        True,
        short_names=("po",),
        categories=("all",),
        storage_hash="xPOwRZ+Yhw8=",
        has_status=True,
        initial_status={"phase": "Pending"},
        returns_deleted=True,
        field_labels=_POD_FIELDS,
        field_label_error="core",
    ),
    ApiResource(
        "",
        "v1",
        "secrets",
        "secret",
        "Secret",
        True,
        storage_hash="S6u1pOWzb84=",
        field_labels=("type", "metadata.namespace", "metadata.name"),
        field_label_error="core",
    ),
    ApiResource(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        True,
        short_names=("sa",),
        storage_hash="pbx9ZvyFpBE=",
        returns_deleted=True,
    ),
    ApiResource(
        "",
        "v1",
        "services",
        "service",
        "Service",
        True,
        short_names=("svc",),
        categories=("all",),
        storage_hash="0/CO1lhkEBI=",
        has_status=True,
        initial_status={"loadBalancer": {}},
        returns_deleted=True,  # G (see the module docstring)
        field_labels=("metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"),
        field_label_error="core",
    ),
    # apps/v1 (api/discovery/apis__apps__v1.json)
    ApiResource(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        True,
        short_names=("deploy",),
        categories=("all",),
        storage_hash="8aSe+NMegvE=",
        has_status=True,
        initial_status={},
        generation=True,
    ),
    ApiResource(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        True,
        short_names=("rs",),
        categories=("all",),
        storage_hash="P1RzHs8/mWQ=",
        has_status=True,
        initial_status={"replicas": 0},
        generation=True,
    ),
    ApiResource(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        True,
        short_names=("sts",),
        categories=("all",),
        storage_hash="H+vl74LkKdo=",
        has_status=True,
        initial_status={"replicas": 0, "availableReplicas": 0},
        generation=True,
    ),
    # batch/v1 (api/discovery/apis__batch__v1.json)
    ApiResource(
        "batch",
        "v1",
        "cronjobs",
        "cronjob",
        "CronJob",
        True,
        short_names=("cj",),
        categories=("all",),
        storage_hash="sd5LIXh4Fjs=",
        has_status=True,
        initial_status={},
        generation=True,
    ),
    ApiResource(
        "batch",
        "v1",
        "jobs",
        "job",
        "Job",
        True,
        categories=("all",),
        storage_hash="mudhfqk/qZY=",
        has_status=True,
        initial_status={},
        generation=True,
    ),
    # The other groups /apis lists, one resource each (abridged further).
    ApiResource(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "ingress",
        "Ingress",
        True,
        short_names=("ing",),
        storage_hash="39NQlfNR+bo=",
        has_status=True,
        initial_status={"loadBalancer": {}},
        generation=True,
    ),
    ApiResource(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        True,
        short_names=("pdb",),
        storage_hash="EVWiDmWqyJw=",
        has_status=True,
        initial_status={},
        generation=True,
    ),
    ApiResource(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        True,
        short_names=("hpa",),
        categories=("all",),
        storage_hash="qwQve8ut294=",
        has_status=True,
        initial_status={},
    ),
    ApiResource(
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        True,
        short_names=("hpa",),
        categories=("all",),
        storage_hash="qwQve8ut294=",
        has_status=True,
        initial_status={},
    ),
)

# (group, version, discovery entry) of the subresources served or listed. Abridged like RESOURCES.
SUBRESOURCES: tuple[tuple[str, str, dict], ...] = (
    ("", "v1", {"name": "namespaces/status", "singularName": "", "namespaced": False, "kind": "Namespace"}),
    ("", "v1", {"name": "pods/exec", "singularName": "", "namespaced": True, "kind": "PodExecOptions"}),
    ("", "v1", {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod"}),
    ("", "v1", {"name": "pods/status", "singularName": "", "namespaced": True, "kind": "Pod"}),
    ("", "v1", {"name": "services/status", "singularName": "", "namespaced": True, "kind": "Service"}),
    # Fields in metav1.APIResource order: a scale subresource names its own group and version (Scale).
    (
        "apps",
        "v1",
        {
            "name": "deployments/scale",
            "singularName": "",
            "namespaced": True,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
        },
    ),
    ("apps", "v1", {"name": "deployments/status", "singularName": "", "namespaced": True, "kind": "Deployment"}),
    ("apps", "v1", {"name": "replicasets/status", "singularName": "", "namespaced": True, "kind": "ReplicaSet"}),
    ("apps", "v1", {"name": "statefulsets/status", "singularName": "", "namespaced": True, "kind": "StatefulSet"}),
    ("batch", "v1", {"name": "cronjobs/status", "singularName": "", "namespaced": True, "kind": "CronJob"}),
    ("batch", "v1", {"name": "jobs/status", "singularName": "", "namespaced": True, "kind": "Job"}),
)
_SUBRESOURCE_VERBS = {
    "exec": ["create", "get"],
    "log": ["get"],
    "scale": list(_STATUS_VERBS),
    "status": list(_STATUS_VERBS),
}

# /apis, in the apiserver's order (api/discovery/apis.json), abridged; preferred version first.
API_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("apps", ("v1",)),
    ("autoscaling", ("v2", "v1")),
    ("batch", ("v1",)),
    ("networking.k8s.io", ("v1",)),
    ("policy", ("v1",)),
)

INITIAL_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
UNDELETABLE_NAMESPACES = ("default", "kube-system", "kube-public")  # namespace lifecycle admission

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
_V5, _V4, _V1 = "v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # apiserver/pkg/storage/names/generate.go (utilrand alphanums)

# ---------------------------------------------------------------------------------------------------------
# Errors, as the apiserver writes them
# ---------------------------------------------------------------------------------------------------------


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    """A metav1.Status Failure as the apiserver serialises it (field order of the Go struct)."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    body["message"] = message
    body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def _details(res: ApiResource | None, name: str | None = None, **extra: Any) -> dict:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if res is not None and res.group:
        d["group"] = res.group
    if res is not None:
        d["kind"] = res.name  # "Yes we set Kind field to resource." (store.go)
    d.update(extra)
    return d


class ApiError(Exception):
    """Raised inside the server to answer with a Status."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.body = status_body(code, reason, message, details)
        self.code = code


def not_found(res: ApiResource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', _details(res, name))


def already_exists(res: ApiResource, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{res.qualified} "{name}" already exists', _details(res, name))


def conflict(res: ApiResource, name: str) -> ApiError:
    msg = (
        f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", msg, _details(res, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def internal_error(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})


_UNKNOWN_PATH = ApiError(404, "NotFound", "the server could not find the requested resource", {})  # G

# ---------------------------------------------------------------------------------------------------------
# Selectors (apimachinery pkg/labels/selector.go and pkg/fields/selector.go grammar)
# ---------------------------------------------------------------------------------------------------------

_SET_RE = re.compile(r"^\s*(?P<key>[^\s!=<>(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_CMP_RE = re.compile(r"^\s*(?P<key>[^\s!=<>(),]+)\s*(?P<op>==|=|!=|<|>)\s*(?P<value>[^\s!=<>(),]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(?P<not>!?)\s*(?P<key>[^\s!=<>(),]+)\s*$")


def _split_outside_parens(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def parse_label_selector(text: str) -> Callable[[dict], bool]:
    """A matcher for `a=b,c!=d,e in (f,g),h notin (i),j,!k,l>3` (comma means AND)."""
    if not text.strip():
        return lambda labels: True
    checks: list[Callable[[dict], bool]] = []
    for term in _split_outside_parens(text):
        if m := _SET_RE.match(term):
            key, values = m["key"], {v.strip() for v in m["values"].split(",") if v.strip()}
            if m["op"] == "in":
                checks.append(lambda lb, k=key, vs=values: k in lb and lb[k] in vs)
            else:
                checks.append(lambda lb, k=key, vs=values: k not in lb or lb[k] not in vs)
        elif m := _CMP_RE.match(term):
            key, op, value = m["key"], m["op"], m["value"]
            if op in ("=", "=="):
                checks.append(lambda lb, k=key, v=value: lb.get(k) == v)
            elif op == "!=":
                checks.append(lambda lb, k=key, v=value: lb.get(k) != v)
            else:
                if not value.lstrip("-").isdigit():
                    msg = "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"
                    raise bad_request(msg)  # G
                n = int(value)
                if op == ">":
                    checks.append(lambda lb, k=key, n=n: k in lb and lb[k].lstrip("-").isdigit() and int(lb[k]) > n)
                else:
                    checks.append(lambda lb, k=key, n=n: k in lb and lb[k].lstrip("-").isdigit() and int(lb[k]) < n)
        elif m := _EXISTS_RE.match(term):
            key, negate = m["key"], bool(m["not"])
            checks.append(lambda lb, k=key, neg=negate: (k in lb) != neg)
        else:
            raise bad_request(f"unable to parse requirement: found '{term.strip()}', expected: identifier")  # G
    return lambda labels: all(check(labels) for check in checks)


def _field_value(obj: dict, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):  # status.podIPs: matched against the first one (G)
        value = value[0].get("ip") if value and isinstance(value[0], dict) else None
    return "" if value is None else str(value)


def parse_field_selector(res: ApiResource, text: str) -> Callable[[dict], bool]:
    if not text.strip():
        return lambda obj: True
    checks = []
    for term in text.split(","):
        m = re.match(r"^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")  # G
        label, op, value = m.groups()
        if label == "spec.host" and res.kind == "Pod":
            label = "spec.nodeName"
        if label not in res.field_labels:
            if res.field_label_error == "core":
                raise bad_request(f"field label not supported: {label}")
            raise bad_request(f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        if op == "!=":
            checks.append(lambda o, lbl=label, v=value: _field_value(o, lbl) != v)
        else:
            checks.append(lambda o, lbl=label, v=value: _field_value(o, lbl) == v)
    return lambda obj: all(check(obj) for check in checks)


# ---------------------------------------------------------------------------------------------------------
# Patches
# ---------------------------------------------------------------------------------------------------------


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def _strip_directives(value: Any) -> Any:
    """Strategic-merge directives ($patch, $retainKeys, $setElementOrder/...) are dropped (simplified)."""
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------------------
# Recorded requests and scripted answers
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Request:
    """One request as the server saw it (path without the instance's prefix)."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    content_type: str | None
    headers: dict[str, str] = field(repr=False, default_factory=dict)
    status: int | None = None  # the answer's HTTP status, filled in once answered
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic)

    def q(self, name: str) -> str | None:
        """The (first) value of one query parameter."""
        values = self.query.get(name)
        return values[0] if values else None


class _Script:
    """Successive answers: a list (the last one sticks) or a callable(n) with n = 0, 1, 2, ..."""

    def __init__(self, answers: Sequence[Any] | Callable[[int], Any]):
        if not callable(answers) and not answers:
            raise ValueError("a script needs at least one answer")
        self._answers = answers
        self.calls = 0

    def next(self) -> Any:
        n, self.calls = self.calls, self.calls + 1
        if callable(self._answers):
            return self._answers(n)
        return self._answers[min(n, len(self._answers) - 1)]


ExecHandler = Callable[[list[str]], tuple[bytes | str, bytes | str, int]]
# on_exec(..., stdin=True): handler(command, stdin) with stdin an ExecStdin.
StdinExecHandler = Callable[[list[str], "ExecStdin"], tuple[bytes | str, bytes | str, int]]


class ExecStdin:
    """What the client sends on the stdin channel of one exec session, read the way a process reads its
    stdin: read() blocks until the client's end of input and returns everything it sent.

    The end of input is, whichever comes first: the v5 close signal for stdin (a frame [255, 0], what
    kubernetes 37.0.2's WSClient.close_channel(0) sends), the client's websocket close frame (what
    kubernetes.core 6.2.0's k8s_cp sends after its last stdin frame: it never signals the end of stdin
    and does not wait for the exit status), or EOF. An exec request without stdin=true has no stdin: b"".
    Frames on other channels (resize, 4) are ignored. A handler that never calls read() leaves whatever
    the client sends to be read (and dropped) once the session ends, as before.
    """

    def __init__(self, handler: _Handler, enabled: bool, v5: bool):
        self._handler = handler
        self._enabled = enabled
        self._v5 = v5
        self._data: bytes | None = None
        self.client_closed = False  # the client's close frame has been read

    def read(self) -> bytes:
        if self._data is not None:
            return self._data
        chunks: list[bytes] = []
        if self._enabled:
            self._handler.connection.settimeout(60)
            try:
                while True:
                    frame = _read_ws_frame(self._handler.rfile)
                    if frame is None:
                        break
                    opcode, payload = frame
                    if opcode == 0x8:
                        self.client_closed = True
                        break
                    if opcode not in (0x1, 0x2) or not payload:
                        continue
                    if self._v5 and payload[0] == 255 and payload[1:2] == b"\x00":
                        break
                    if payload[0] == 0:
                        chunks.append(payload[1:])
            except (OSError, ValueError):
                pass
        self._data = b"".join(chunks)
        return self._data


class PodNotFound(LookupError):
    """Raise from an exec handler to make the apiserver answer 404 (the pod is gone)."""


# ---------------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_META_ORDER = (
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)


def _ordered(obj: dict) -> dict:
    """Field order of the Go types: kind, apiVersion, metadata, ..., status last."""
    out: dict[str, Any] = {}
    for key in ("kind", "apiVersion"):
        if key in obj:
            out[key] = obj[key]
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        out["metadata"] = {k: meta[k] for k in _META_ORDER if k in meta} | {
            k: v for k, v in meta.items() if k not in _META_ORDER
        }
    for key, value in obj.items():
        if key not in out and key != "status":
            out[key] = value
    if "status" in obj:
        out["status"] = obj["status"]
    return out


class KubeApi:
    """A stand-in Kubernetes v1.32 API server. Use as a context manager; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._rv = itertools.count(random.randint(1000, 5000))
        self._last_rv = 0
        self._store: dict[tuple[str, str], dict[tuple[str, str], dict]] = {}
        self._get_scripts: dict[tuple[str, str, str, str], _Script] = {}
        self._list_scripts: dict[tuple[str, str, str | None], _Script] = {}
        self._exec: dict[tuple[str, str, str | None], Any] = {}
        self._exec_stdin: set[tuple[str, str, str | None]] = set()  # handlers that take (command, stdin)
        self._refusals: list[list[Any]] = []  # [method, path, times left, ApiError] (refuse())
        self._logs: dict[tuple[str, str, str | None], str] = {}
        self.requests: list[Request] = []
        self.errors: list[str] = []  # tracebacks of stand-in failures (a test should assert it is empty)
        self.prefix = "/kube-" + uuid.uuid4().hex[:12]
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for ns in INITIAL_NAMESPACES:
            self.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # -- lifecycle ----------------------------------------------------------------------------------------

    def __enter__(self) -> KubeApi:
        api = self

        class Handler(_Handler):
            pass

        Handler.api = api
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="kube-api", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for path in self.discovery_cache_files():
            path.unlink(missing_ok=True)

    @property
    def port(self) -> int:
        assert self._server is not None, "start the server first: with KubeApi() as api"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The server URL the kubeconfig names (scheme, host, port and this instance's prefix)."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def kubeconfig(self, path: str | os.PathLike, context: str = "atlas-dev", namespace: str | None = None) -> str:
        """Write a kubeconfig for this server (plain http, a bearer-token user); returns its path."""
        ctx: dict[str, Any] = {"cluster": context, "user": context}
        if namespace:
            ctx["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "kube-api-standin-token"}}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
            "preferences": {},
        }
        Path(path).write_text(yaml.safe_dump(config, sort_keys=False))
        return str(path)

    def discovery_cache_files(self) -> list[Path]:
        """Where the kubernetes client and kubernetes.core cache this server's discovery (may not exist)."""
        if self._server is None:
            return []
        host = self.url
        tmp = Path(tempfile.gettempdir())
        users: list[str | None] = [None, os.environ.get("USERNAME")]
        with contextlib.suppress(OSError):
            users.append(os.getlogin())
        if hasattr(os, "getuid") and os.getuid():
            users.append(str(os.getuid()))
        names = {f"osrcp-{hashlib.md5(host.encode(), usedforsecurity=False).hexdigest()}.json"}
        for user in users:
            cache_id = f"{host}-{user}" if user else host
            names.add(f"k8srcp-{hashlib.sha256(cache_id.encode()).hexdigest()}.json")
        return [tmp / n for n in sorted(names)]

    # -- state --------------------------------------------------------------------------------------------

    def resource(self, kind: str, api_version: str | None = None) -> ApiResource:
        """The resource type for a kind, plural, singular or short name (optionally of one apiVersion)."""
        low = kind.lower()
        found = [
            r
            for r in RESOURCES
            if (kind == r.kind or low in (r.name, r.singular) or low in r.short_names)
            and (api_version is None or api_version == r.group_version)
        ]
        if not found:
            raise KeyError(f"kube_api stand-in serves no resource {kind!r} {api_version or ''}")
        return found[0]

    def _bucket(self, res: ApiResource) -> dict[tuple[str, str], dict]:
        return self._store.setdefault((res.group, res.name), {})

    def _key(self, res: ApiResource, namespace: str | None, name: str) -> tuple[str, str]:
        return ((namespace or "") if res.namespaced else "", name)

    def add(self, obj: dict) -> dict:
        """Put an object into the cluster as a controller would (no admission, status kept as given).

        Fills metadata.uid, resourceVersion, creationTimestamp (and generation 1 where the kind has one)
        when missing; applies the defaulting listed in the module docstring. Replaces an existing object
        of that name (keeping its uid). Returns a copy of what is stored.
        """
        res = self.resource(obj["kind"], obj.get("apiVersion"))
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        with self._lock:
            old = self._bucket(res).get(self._key(res, meta.get("namespace"), meta["name"]))
            self._stamp(res, obj, old, keep_status=False, by_api=False)
            self._bucket(res)[self._key(res, meta.get("namespace"), meta["name"])] = obj
            return copy.deepcopy(obj)

    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        """A copy of the stored object, or None."""
        res = self.resource(kind)
        with self._lock:
            obj = self._bucket(res).get(self._key(res, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def objects(self, kind: str, namespace: str | None = None) -> list[dict]:
        """Copies of the stored objects of a kind (of one namespace, or all), sorted like etcd keys."""
        res = self.resource(kind)
        with self._lock:
            items = sorted(self._bucket(res).items())
            return [copy.deepcopy(o) for (ns, _), o in items if namespace is None or ns == namespace]

    def remove(self, kind: str, namespace: str | None, name: str) -> None:
        res = self.resource(kind)
        with self._lock:
            self._bucket(res).pop(self._key(res, namespace, name), None)

    def on_get(
        self, kind: str, namespace: str | None, name: str, answers: Sequence[dict | None] | Callable[[int], Any]
    ) -> None:
        """Script what successive GETs of one object find: each GET first makes the next answer the
        object's state (a dict is stored like add(); None deletes it), then answers from the state, so a
        LIST in between sees the same thing. The last answer of a list sticks; a callable gets the call
        number (0, 1, ...)."""
        res = self.resource(kind)
        self._get_scripts[(res.group, res.name, self._key(res, namespace, name)[0], name)] = _Script(answers)

    def on_list(
        self, kind: str, namespace: str | None, answers: Sequence[Iterable[dict]] | Callable[[int], Any]
    ) -> None:
        """Script successive LISTs of a kind in a namespace (None: the all-namespaces LIST): each LIST
        first replaces the objects of that namespace (or all) with the next answer, then is answered
        from the state (selectors applied)."""
        res = self.resource(kind)
        self._list_scripts[(res.group, res.name, namespace)] = _Script(answers)

    def on_exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        handler: ExecHandler | StdinExecHandler,
        stdin: bool = False,
    ) -> None:
        """handler(command) -> (stdout, stderr, exit_code) runs for exec requests into that pod (container
        None: any container). Raise PodNotFound (any LookupError) to answer as for a missing pod. The pod
        itself must exist (add it), as the apiserver looks it up before anything else.

        stdin=True: handler(command, stdin) runs after the websocket upgrade, as the container's process
        does, and may read what the client sends with stdin.read() (an ExecStdin; what k8s_cp to_pod
        needs: tar reads the archive from stdin). Its output and exit status are sent once it returns. The
        pod lookup happened before the upgrade, so PodNotFound cannot be answered any more: raising it
        ends the session with exit code 1 and a traceback in api.errors."""
        self._exec[(namespace, pod, container)] = handler
        if stdin:
            self._exec_stdin.add((namespace, pod, container))
        else:
            self._exec_stdin.discard((namespace, pod, container))

    def set_log(self, namespace: str, pod: str, text: str, container: str | None = None) -> None:
        self._logs[(namespace, pod, container)] = text

    def refuse(
        self,
        method: str,
        path: str,
        message: str,
        code: int = 403,
        reason: str = "Forbidden",
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests of this method to this path (without the instance's prefix) with
        a Status failure instead of serving them - what a test needs to make one write fail, as an
        authorizer or an admission webhook refusing it would. Nothing is stored; the request is recorded
        with that status. (Stand-in specific: the apiserver has no such switch.)"""
        with self._lock:
            self._refusals.append([method, path, times, ApiError(code, reason, message)])

    def _take_refusal(self, method: str, path: str) -> ApiError | None:
        for refusal in self._refusals:
            if refusal[0] == method and refusal[1] == path and refusal[2] > 0:
                refusal[2] -= 1
                return refusal[3]
        return None

    def requests_for(self, method: str | None = None, path: str | None = None) -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and (path is None or r.path == path)]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- object helpers (shapes of real v1.32 objects; values invented) -----------------------------------

    @staticmethod
    def pod(
        name: str,
        namespace: str = "atlas",
        labels: dict | None = None,
        containers: Sequence[str] = ("app",),
        phase: str = "Running",
        ready: bool = True,
        node: str | None = "atlas-dev",
    ) -> dict:
        """A Pod as the scheduler and kubelet leave it: Running and Ready by default."""
        started = _now()
        ready_status = "True" if ready else "False"
        spec: dict[str, Any] = {
            "containers": [
                {"name": c, "image": f"atlas/{c}:dev", "imagePullPolicy": "IfNotPresent"} for c in containers
            ],
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
        }
        if node:
            spec["nodeName"] = node
        status: dict[str, Any] = {"phase": phase}
        if node:
            status["conditions"] = [
                {"type": t, "status": s, "lastProbeTime": None, "lastTransitionTime": started}
                for t, s in (
                    ("PodReadyToStartContainers", "True"),
                    ("Initialized", "True"),
                    ("Ready", ready_status),
                    ("ContainersReady", ready_status),
                    ("PodScheduled", "True"),
                )
            ]
            status.update({"hostIP": "192.168.49.2", "podIP": "10.244.0.7", "startTime": started})
            status["containerStatuses"] = [
                {
                    "name": c,
                    "ready": ready,
                    "started": phase == "Running",
                    "restartCount": 0,
                    "image": f"atlas/{c}:dev",
                    "imageID": f"docker://sha256:{hashlib.sha256(c.encode()).hexdigest()}",
                    "containerID": f"docker://{hashlib.sha256(name.encode() + c.encode()).hexdigest()}",
                    "state": {"running": {"startedAt": started}}
                    if phase == "Running"
                    else {"waiting": {"reason": "ContainerCreating"}},
                }
                for c in containers
            ]
        status["qosClass"] = "BestEffort"
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
            "spec": spec,
            "status": status,
        }

    @staticmethod
    def deployment(
        name: str,
        namespace: str = "atlas",
        replicas: int = 1,
        available: int | None = None,
        observed_generation: int = 1,
        labels: dict | None = None,
    ) -> dict:
        """A Deployment whose status the controller has written (rolled out when available == replicas)."""
        available = replicas if available is None else available
        selector = dict(labels or {"app": name})
        status: dict[str, Any] = {"observedGeneration": observed_generation}
        if replicas:
            status.update({"replicas": replicas, "updatedReplicas": replicas, "readyReplicas": available})
            status["availableReplicas"] = available
            if available < replicas:
                status["unavailableReplicas"] = replicas - available
        status["conditions"] = [
            {
                "type": "Available",
                "status": "True" if available >= replicas else "False",
                "reason": "MinimumReplicasAvailable" if available >= replicas else "MinimumReplicasUnavailable",
            },
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ]
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "generation": 1, "labels": selector},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": selector},
                    "spec": {"containers": [{"name": name, "image": f"atlas/{name}:dev"}]},
                },
            },
            "status": status,
        }

    # -- server-side object handling ----------------------------------------------------------------------

    def _stamp(self, res: ApiResource, obj: dict, old: dict | None, keep_status: bool, by_api: bool = True) -> None:
        """System metadata and defaulting for an object about to be stored (old: the stored one).

        by_api: a write through the API (uid, creationTimestamp, generation are the server's); otherwise a
        controller-like write from the test (add(), scripts), whose explicit values are kept.
        """
        meta = obj.setdefault("metadata", {})
        obj.setdefault("apiVersion", res.group_version)
        obj.setdefault("kind", res.kind)
        for key, fresh in (("uid", lambda: str(uuid.uuid4())), ("creationTimestamp", _now)):
            if old is not None and (by_api or key not in meta):
                meta[key] = old["metadata"][key]
            elif by_api or key not in meta:
                meta[key] = fresh()
        self._default(res, obj)
        if keep_status and res.has_status:
            if old is not None and "status" in old:
                obj["status"] = copy.deepcopy(old["status"])
            else:
                obj.pop("status", None)
        if res.generation and (by_api or "generation" not in meta):
            if old is None:
                meta["generation"] = 1
            else:
                bumped = obj.get("spec") != old.get("spec")
                if res.kind == "Deployment":
                    bumped = bumped or meta.get("annotations") != old["metadata"].get("annotations")
                meta["generation"] = old["metadata"].get("generation", 1) + (1 if bumped else 0)
        if old is not None and self._same(obj, old):
            meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        else:
            self._last_rv = next(self._rv)
            meta["resourceVersion"] = str(self._last_rv)
        ordered = _ordered(obj)
        obj.clear()
        obj.update(ordered)

    @staticmethod
    def _same(a: dict, b: dict) -> bool:
        strip = lambda o: {**o, "metadata": {k: v for k, v in o["metadata"].items() if k != "resourceVersion"}}  # noqa: E731
        return strip(a) == strip(b)

    @staticmethod
    def _default(res: ApiResource, obj: dict) -> None:
        meta = obj["metadata"]
        if res.kind == "Namespace":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            finalizers = obj.setdefault("spec", {}).setdefault("finalizers", [])
            if "kubernetes" not in finalizers:
                finalizers.append("kubernetes")
            obj.setdefault("status", {}).setdefault("phase", "Active")
        elif res.kind == "Secret":
            string_data = obj.pop("stringData", None) or {}
            if string_data:
                data = obj.setdefault("data", {})
                for k, v in string_data.items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
            obj.setdefault("type", "Opaque")
        elif res.kind == "Pod" and isinstance(obj.get("status"), dict) and "qosClass" not in obj["status"]:
            containers = obj.get("spec", {}).get("containers", [])
            obj["status"]["qosClass"] = "Burstable" if any(c.get("resources") for c in containers) else "BestEffort"

    def _initial_status(self, res: ApiResource, obj: dict) -> None:
        if res.has_status:
            obj["status"] = copy.deepcopy(res.initial_status or {})

    def _apply_get_script(self, res: ApiResource, namespace: str, name: str) -> None:
        script = self._get_scripts.get((res.group, res.name, namespace, name))
        if script is None:
            return
        answer = script.next()
        key = self._key(res, namespace, name)
        if answer is None:
            self._bucket(res).pop(key, None)
            return
        obj = copy.deepcopy(answer)
        meta = obj.setdefault("metadata", {})
        meta["name"] = name
        if res.namespaced:
            meta["namespace"] = namespace
        meta.pop("resourceVersion", None)
        self._stamp(res, obj, self._bucket(res).get(key), keep_status=False, by_api=False)
        self._bucket(res)[key] = obj

    def _apply_list_script(self, res: ApiResource, namespace: str | None) -> None:
        script = self._list_scripts.get((res.group, res.name, namespace))
        if script is None:
            return
        answer = list(script.next() or [])
        bucket = self._bucket(res)
        for key in [k for k in bucket if namespace is None or k[0] == namespace]:
            del bucket[key]
        for item in answer:
            item = copy.deepcopy(item)
            item.setdefault("metadata", {})
            if res.namespaced and namespace is not None:
                item["metadata"]["namespace"] = namespace
            item.setdefault("kind", res.kind)
            item.setdefault("apiVersion", res.group_version)
            self.add(item)


@dataclass
class _Route:
    res: ApiResource | None
    namespace: str | None
    name: str | None
    sub: str | None
    version: str


class _Handler(BaseHTTPRequestHandler):
    api: KubeApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        # The apiserver sends no Server header.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    # -- plumbing -----------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        api = self.api
        parts = urlsplit(self.path)
        raw = b""
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            raw = self.rfile.read(length)
        content_type = self.headers.get("Content-Type")
        body: Any = None
        if raw:
            try:
                body = json.loads(raw) if "yaml" not in (content_type or "") else yaml.safe_load(raw)
            except (ValueError, yaml.YAMLError):
                body = raw.decode("utf-8", "replace")
        path = unquote(parts.path)
        if not path.startswith(api.prefix + "/") and path != api.prefix:
            self._text(404, "404 page not found\n")
            return
        path = path[len(api.prefix) :] or "/"
        record = Request(
            method,
            path,
            parse_qs(parts.query, keep_blank_values=True),
            body,
            content_type,
            {k.lower(): v for k, v in self.headers.items()},
        )
        with api._lock:
            api.requests.append(record)
            refusal = api._take_refusal(method, path)
        try:
            if refusal is not None:
                raise refusal
            code, answer = self._dispatch(record)
        except ApiError as e:
            code, answer = e.code, e.body
        except Exception:  # a stand-in bug: answer 500 and keep the traceback for the test
            api.errors.append(traceback.format_exc())
            err = internal_error("kube_api stand-in failed: " + traceback.format_exc().splitlines()[-1])
            code, answer = err.code, err.body
        record.status = code
        if answer is _UPGRADED:
            return
        if isinstance(answer, _Pretty):
            self._json(code, answer.value, indent=True)
        elif isinstance(answer, str):
            self._text(code, answer)
        else:
            self._json(code, answer)

    def _headers(self, code: int, content_type: str, length: int) -> None:
        self.send_response(code)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", content_type)
        self.send_header("X-Kubernetes-Pf-Flowschema-Uid", "8a8b5c2e-6c0e-4a5e-9d56-2f0e1d5c4b11")
        self.send_header("X-Kubernetes-Pf-Prioritylevel-Uid", "3c1f0a9d-8b7e-4f6a-a2d1-7e5c9b0d4f22")
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _json(self, code: int, answer: Any, indent: bool = False) -> None:
        data = (json.dumps(answer, indent=2) if indent else json.dumps(answer, separators=(",", ":")) + "\n").encode()
        self._headers(code, "application/json", len(data))
        self.wfile.write(data)

    def _text(self, code: int, text: str) -> None:
        data = text.encode()
        self._headers(code, "text/plain; charset=utf-8", len(data))
        self.wfile.write(data)

    # -- routing ------------------------------------------------------------------------------------------

    def _dispatch(self, req: Request) -> tuple[int, Any]:
        api = self.api
        segs = [s for s in req.path.split("/") if s]
        if req.method == "GET":
            if segs == ["version"]:
                return 200, _Pretty(VERSION_INFO)
            if segs == ["api"]:
                cidr = {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{api.port}"}
                return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [cidr]}
            if segs == ["apis"]:
                groups = [_group(g, vs) for g, vs in API_GROUPS]
                return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
            if len(segs) == 2 and segs[0] == "apis":
                for g, vs in API_GROUPS:
                    if g == segs[1]:
                        return 200, {"kind": "APIGroup", "apiVersion": "v1", **_group(g, vs)}
                raise _UNKNOWN_PATH
            if segs == ["api", "v1"]:
                return 200, _resource_list("", "v1")
            if len(segs) == 3 and segs[0] == "apis" and (segs[1], segs[2]) in _served_group_versions():
                return 200, _resource_list(segs[1], segs[2])
        route = _route(segs)
        if route is None or route.res is None:
            raise _UNKNOWN_PATH
        res = route.res
        if route.sub in ("exec", "log"):
            if req.method not in ("GET", "POST") or res.kind != "Pod" or not route.name:
                raise _UNKNOWN_PATH
            if route.sub == "log":
                with api._lock:
                    return 200, self._log(route, req)
            return self._exec_request(route, req)  # takes the lock only to look the pod up
        with api._lock:
            dry_run = "All" in req.query.get("dryRun", []) or (
                isinstance(req.body, dict) and "All" in (req.body.get("dryRun") or [])
            )
            if route.sub == "scale" and res.kind == "Deployment" and route.name:
                return self._scale(route, req, dry_run)
            if route.sub not in (None, "status") or (route.sub == "status" and not res.has_status):
                raise _UNKNOWN_PATH
            if req.q("watch") in ("true", "1", "True"):
                raise internal_error("kube_api stand-in: watch is not implemented")
            if route.name is None:
                if req.method == "GET":
                    return 200, self._list(route, req)
                if req.method == "POST":
                    return self._create(route, req.body, dry_run)
                if req.method == "DELETE":
                    return 200, self._delete_collection(route, req, dry_run)
                raise _UNKNOWN_PATH
            if req.method == "GET":
                api._apply_get_script(res, route.namespace or "", route.name)
                return 200, self._existing(route)
            if req.method == "PUT":
                return self._replace(route, req, dry_run)
            if req.method == "PATCH":
                return self._patch(route, req, dry_run)
            if req.method == "DELETE":
                return self._delete(route, req, dry_run)
        raise _UNKNOWN_PATH

    # -- verbs --------------------------------------------------------------------------------------------

    def _existing(self, route: _Route) -> dict:
        res = route.res
        assert res is not None and route.name is not None
        obj = self.api._bucket(res).get(self.api._key(res, route.namespace, route.name))
        if obj is None:
            raise not_found(res, route.name)
        return _served(obj, route)

    def _list(self, route: _Route, req: Request) -> dict:
        api, res = self.api, route.res
        assert res is not None
        labels = parse_label_selector(req.q("labelSelector") or "")
        fields = parse_field_selector(res, req.q("fieldSelector") or "")
        api._apply_list_script(res, route.namespace)
        items = []
        for (ns, _), obj in sorted(api._bucket(res).items()):
            if route.namespace is not None and ns != route.namespace:
                continue
            if labels(obj["metadata"].get("labels") or {}) and fields(obj):
                item = _served(obj, route)
                item.pop("kind", None)
                item.pop("apiVersion", None)
                items.append(item)
        list_meta = {"resourceVersion": str(api._last_rv)}  # the store's current revision
        return {"kind": f"{res.kind}List", "apiVersion": _gv(res, route), "metadata": list_meta, "items": items}

    def _check_namespace(self, route: _Route) -> None:
        res = route.res
        assert res is not None
        if res.namespaced:
            ns_res = self.api.resource("Namespace")
            if route.namespace is None or (route.namespace not in self._names(ns_res)):
                raise not_found(ns_res, route.namespace or "")

    def _names(self, res: ApiResource) -> set[str]:
        return {name for (_, name) in self.api._bucket(res)}

    def _body_object(self, route: _Route, body: Any) -> dict:
        res = route.res
        assert res is not None
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")  # G
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            if meta.get("namespace") not in (None, "", route.namespace):
                msg = "the namespace of the provided object does not match the namespace sent on the request"
                raise bad_request(msg)
            meta["namespace"] = route.namespace
        else:
            meta.pop("namespace", None)
        obj["apiVersion"] = _gv(res, route)
        obj["kind"] = res.kind
        return obj

    def _create(self, route: _Route, body: Any, dry_run: bool) -> tuple[int, dict]:
        api, res = self.api, route.res
        assert res is not None
        if route.sub:
            raise _UNKNOWN_PATH
        obj = self._body_object(route, body)
        meta = obj["metadata"]
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + "".join(random.choices(_NAME_CHARS, k=5))
            else:
                msg = "Required value: name or generateName is required"
                cause = {"reason": "FieldValueRequired", "message": msg, "field": "metadata.name"}
                details = {"kind": res.kind, "causes": [cause]}
                raise ApiError(422, "Invalid", f'{res.kind} "" is invalid: metadata.name: {msg}', details)  # G
        self._check_namespace(route)
        key = api._key(res, route.namespace, meta["name"])
        if key in api._bucket(res):
            raise already_exists(res, meta["name"])
        for k in ("uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp"):
            meta.pop(k, None)
        api._initial_status(res, obj)
        api._stamp(res, obj, None, keep_status=False)
        if dry_run:  # dryrun.go: a create that is not stored has no resourceVersion
            obj["metadata"].pop("resourceVersion", None)
        else:
            api._bucket(res)[key] = obj
        return 201, _served(obj, route)

    def _precondition(self, route: _Route, old: dict, new_meta: dict) -> None:
        rv = new_meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            assert route.res is not None and route.name is not None
            raise conflict(route.res, route.name)

    def _write(self, route: _Route, old: dict, new: dict, dry_run: bool) -> dict:
        """Store an update of old (main resource or status subresource)."""
        api, res = self.api, route.res
        assert res is not None and route.name is not None
        meta = new.setdefault("metadata", {})
        meta["name"] = route.name
        if res.namespaced:
            meta["namespace"] = route.namespace
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        if route.sub == "status":  # only the status changes
            new = {**copy.deepcopy(old), "status": new.get("status", old.get("status"))}
            meta = new["metadata"]
        meta.pop("resourceVersion", None)
        meta.pop("generation", None)
        if "generation" in old["metadata"]:
            meta["generation"] = old["metadata"]["generation"]
        api._stamp(res, new, old, keep_status=route.sub != "status")
        if dry_run:  # dryrun.go: nothing is written, so the resourceVersion stays
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        else:
            api._bucket(res)[api._key(res, route.namespace, route.name)] = new
        return _served(new, route)

    def _replace(self, route: _Route, req: Request, dry_run: bool) -> tuple[int, dict]:
        api, res = self.api, route.res
        assert res is not None and route.name is not None
        old = api._bucket(res).get(api._key(res, route.namespace, route.name))
        if old is None:
            raise not_found(res, route.name)
        new = self._body_object(route, req.body)
        if new["metadata"].get("name") not in (None, route.name):
            raise bad_request("the name of the object does not match the name on the URL")
        self._precondition(route, old, new["metadata"])
        return 200, self._write(route, old, new, dry_run)

    def _patch(self, route: _Route, req: Request, dry_run: bool) -> tuple[int, dict]:
        api, res = self.api, route.res
        assert res is not None and route.name is not None
        ctype = (req.content_type or "").split(";")[0].strip()
        old = api._bucket(res).get(api._key(res, route.namespace, route.name))
        if ctype == "application/apply-patch+yaml":
            if not req.q("fieldManager"):
                msg = "Required value: is required for apply patch"
                cause = {"reason": "FieldValueRequired", "message": msg, "field": "fieldManager"}
                details = {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [cause]}
                raise ApiError(422, "Invalid", f'PatchOptions.meta.k8s.io "" is invalid: fieldManager: {msg}', details)
            if old is None:  # apply creates
                body = copy.deepcopy(req.body)
                if isinstance(body, dict):
                    body.setdefault("metadata", {}).setdefault("name", route.name)
                return self._create(_Route(res, route.namespace, None, None, route.version), body, dry_run)
            patch = req.body
        elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if old is None:
                raise not_found(res, route.name)
            patch = _strip_directives(req.body) if ctype.startswith("application/strategic") else req.body
        elif ctype == "application/json-patch+json":
            raise internal_error("kube_api stand-in: application/json-patch+json is not implemented")
        else:
            msg = (
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            )
            raise ApiError(415, "UnsupportedMediaType", msg)
        if not isinstance(patch, dict):
            raise bad_request("the body of the request was in an unknown format")  # G
        self._precondition(route, old, patch.get("metadata") or {})
        merged = json_merge_patch(old, patch)
        return 200, self._write(route, old, merged, dry_run)

    def _scale(self, route: _Route, req: Request, dry_run: bool) -> tuple[int, dict]:
        """deployments/<name>/scale: pkg/registry/apps/deployment/storage/storage.go ScaleREST. The
        Deployment seen as an autoscaling/v1 Scale (scaleFromDeployment); an update or patch of the Scale
        moves spec.replicas (and a resourceVersion precondition) into the Deployment, which is then
        written like any update of it (generation +1 when the replicas change, status kept)."""
        api, res = self.api, route.res
        assert res is not None and route.name is not None
        if req.method == "GET":
            api._apply_get_script(res, route.namespace or "", route.name)
        old = api._bucket(res).get(api._key(res, route.namespace, route.name))
        if old is None:
            raise not_found(res, route.name)
        current = _scale_of(old)
        if req.method == "GET":
            return 200, current
        ctype = (req.content_type or "").split(";")[0].strip()
        if req.method == "PUT":
            wanted = req.body
        elif req.method != "PATCH":
            raise _UNKNOWN_PATH
        elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if not isinstance(req.body, dict):
                raise bad_request("the body of the request was in an unknown format")  # G
            wanted = json_merge_patch(current, _strip_directives(req.body))
        else:
            raise internal_error(f"kube_api stand-in: {ctype or 'no content type'} on a scale is not implemented")
        if not isinstance(wanted, dict):
            raise bad_request("the body of the request was in an unknown format")  # G
        replicas = (wanted.get("spec") or {}).get("replicas", 0)  # ScaleSpec.replicas is omitempty: absent is 0
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            msg = f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0"  # G (ValidateScale)
            cause = {"reason": "FieldValueInvalid", "message": msg, "field": "spec.replicas"}
            details = {"name": route.name, "group": "autoscaling", "kind": "Scale", "causes": [cause]}
            message = f'Scale.autoscaling "{route.name}" is invalid: spec.replicas: {msg}'
            raise ApiError(422, "Invalid", message, details)
        self._precondition(route, old, wanted.get("metadata") or {})
        new = copy.deepcopy(old)
        new.setdefault("spec", {})["replicas"] = replicas
        main = _Route(res, route.namespace, route.name, None, route.version)
        return 200, _scale_of(self._write(main, old, new, dry_run))

    def _deleted_answer(self, route: _Route, obj: dict) -> dict:
        res = route.res
        assert res is not None
        if res.returns_deleted:
            return _served(obj, route)
        details = _details(res, obj["metadata"]["name"], uid=obj["metadata"]["uid"])
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def _delete(self, route: _Route, req: Request, dry_run: bool) -> tuple[int, dict]:
        api, res = self.api, route.res
        assert res is not None and route.name is not None
        if route.sub:
            raise _UNKNOWN_PATH
        key = api._key(res, route.namespace, route.name)
        obj = api._bucket(res).get(key)
        if obj is None:
            raise not_found(res, route.name)
        if res.kind == "Namespace":
            if route.name in UNDELETABLE_NAMESPACES:
                msg = f'namespaces "{route.name}" is forbidden: this namespace may not be deleted'
                raise ApiError(403, "Forbidden", msg, _details(res, route.name))
            answer = copy.deepcopy(obj)
            answer["metadata"]["deletionTimestamp"] = _now()
            answer["status"] = {"phase": "Terminating"}
            if not dry_run:  # the namespace controller's work, done at once (simplified)
                del api._bucket(res)[key]
                for (_group, _name), bucket in api._store.items():
                    for k in [k for k in bucket if k[0] == route.name]:
                        del bucket[k]
            return 200, _served(_ordered(answer), route)
        if not dry_run:
            del api._bucket(res)[key]
        return 200, self._deleted_answer(route, obj)

    def _delete_collection(self, route: _Route, req: Request, dry_run: bool) -> dict:
        api, res = self.api, route.res
        assert res is not None
        if "deletecollection" not in res.verbs:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        listed = self._list(route, req)
        for item in listed["items"]:
            if not dry_run:
                api._bucket(res).pop(api._key(res, item["metadata"].get("namespace"), item["metadata"]["name"]), None)
        return listed

    # -- pods/log and pods/exec ---------------------------------------------------------------------------

    def _pod_and_container(self, route: _Route, container: str | None) -> tuple[dict, str]:
        """pkg/registry/core/pod/strategy.go streamLocation: the checks made before any connection."""
        pod = self._existing(route)
        name = pod["metadata"]["name"]
        spec = pod.get("spec") or {}
        containers = [c["name"] for c in spec.get("containers") or []]
        others = [c["name"] for key in ("initContainers", "ephemeralContainers") for c in spec.get(key) or []]
        if not container:
            if len(containers) == 1:
                container = containers[0]
            elif not containers:
                raise bad_request(f"a container name must be specified for pod {name}")
            else:
                msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
                inits = [c["name"] for c in spec.get("initContainers") or []]
                if inits:
                    msg += f" or one of the init containers: [{' '.join(inits)}]"
                raise bad_request(msg)
        elif container not in containers + others:
            raise bad_request(f"container {container} is not valid for pod {name}")
        if not spec.get("nodeName"):
            raise bad_request(f"pod {name} does not have a host assigned")
        return pod, container

    def _log(self, route: _Route, req: Request) -> str:
        assert route.name is not None
        _, container = self._pod_and_container(route, req.q("container"))
        logs, ns = self.api._logs, route.namespace or ""
        return logs.get((ns, route.name, container), logs.get((ns, route.name, None), ""))

    def _exec_request(self, route: _Route, req: Request) -> tuple[int, Any]:
        api = self.api
        assert route.name is not None and route.res is not None
        namespace, name = route.namespace or "", route.name
        with api._lock:
            _, container = self._pod_and_container(route, req.q("container"))
        command = req.query.get("command", [])
        if not command:
            raise bad_request("you must specify at least 1 command")  # G
        if "websocket" not in (self.headers.get("Upgrade") or "").lower():
            raise bad_request("Upgrade request required")  # G
        offered = [p.strip() for p in (self.headers.get("Sec-WebSocket-Protocol") or "").split(",") if p.strip()]
        supported = [_V5] if _V5 in offered else [_V4, _V1, ""]  # translator (v5) or the kubelet (v4 and older)
        chosen = next((p for p in (offered or [""]) if p in supported), None)
        if chosen is None:
            raise bad_request(f"requested protocol(s) are not supported: {offered}; supports {supported}")  # G
        key = (namespace, name, container) if (namespace, name, container) in api._exec else (namespace, name, None)
        handler = api._exec.get(key)
        if handler is None:
            raise internal_error(f"kube_api stand-in: no exec handler for pod {namespace}/{name} container {container}")
        stdin: ExecStdin | None = None
        if key in api._exec_stdin:  # the process runs once the streams are set up, reading stdin as it goes
            self._upgrade(chosen)
            stdin = ExecStdin(self, enabled=req.q("stdin") in ("true", "True", "1"), v5=chosen == _V5)
            try:
                stdout, stderr, rc = handler(list(command), stdin)
            except Exception:
                api.errors.append(traceback.format_exc())
                stdout, stderr, rc = b"", b"kube_api stand-in: the exec handler failed\n", 1
        else:
            try:
                stdout, stderr, rc = handler(list(command))
            except LookupError:
                raise not_found(route.res, name) from None
        stdout = stdout.encode() if isinstance(stdout, str) else stdout
        stderr = stderr.encode() if isinstance(stderr, str) else stderr
        want_out = req.q("stdout") in ("true", "True", "1")
        want_err = req.q("stderr") in ("true", "True", "1")
        if rc == 0:
            status: dict[str, Any] = {"metadata": {}, "status": "Success"}
        else:
            status = {
                "metadata": {},
                "status": "Failure",
                "message": f"command terminated with non-zero exit code: command terminated with exit code {rc}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(rc)}]},
            }
        if stdin is None:
            self._upgrade(chosen)
        frames: list[tuple[int, bytes]] = []
        if chosen == _V5:  # websocket.go: an empty message on the lowest writable channel
            frames.append((1 if want_out else 2 if want_err else 3, b""))
        if want_out:
            frames += [(1, stdout[i : i + 32768]) for i in range(0, len(stdout), 32768)]
        if want_err:
            frames += [(2, stderr[i : i + 32768]) for i in range(0, len(stderr), 32768)]
        if chosen in (_V5, _V4):
            frames.append((3, json.dumps(status, separators=(",", ":")).encode()))
        elif rc != 0:
            frames.append((3, status["message"].encode()))
        try:
            for channel, data in frames:
                self.wfile.write(_ws_frame(0x2, bytes([channel]) + data))
            self.wfile.write(_ws_frame(0x8, (1000).to_bytes(2, "big")))
        except OSError:  # a client that closed first (k8s_cp to_pod) may be gone: its answer is lost, as upstream
            pass
        if stdin is None or not stdin.client_closed:
            self._await_close()
        self.close_connection = True
        return 101, _UPGRADED

    def _upgrade(self, protocol: str) -> None:
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()  # noqa: S324 - RFC 6455
        self.send_response_only(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        if protocol:
            self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.wfile.flush()

    def _await_close(self) -> None:
        """Read the client's frames until its close frame (or EOF / 10 s), as streamtranslator's finish does."""
        self.connection.settimeout(10)
        try:
            while True:
                frame = _read_ws_frame(self.rfile)
                if frame is None or frame[0] == 0x8:
                    return
        except (OSError, ValueError):
            return


_UPGRADED = object()  # the handler wrote the answer itself


@dataclass
class _Pretty:
    """An answer written as routes/version.go's WriteRawJSON does (indented, no trailing newline)."""

    value: Any


def _ws_frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked, final server frame (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 1 << 16:
        head = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return head + payload


def _read_ws_frame(rfile: Any) -> tuple[int, bytes] | None:
    """One client frame (masked, as RFC 6455 requires of clients), or None at EOF."""
    head = rfile.read(2)
    if len(head) < 2:
        return None
    opcode, masked, n = head[0] & 0x0F, head[1] & 0x80, head[1] & 0x7F
    if n == 126:
        n = int.from_bytes(rfile.read(2), "big")
    elif n == 127:
        n = int.from_bytes(rfile.read(8), "big")
    mask = rfile.read(4) if masked else b""
    data = rfile.read(n)
    if masked and data:  # XOR with the repeated 4-byte key, as one big integer (fast for MiB-sized frames)
        key = (mask * (len(data) // 4 + 1))[: len(data)]
        data = (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")
    return opcode, data


def _scale_of(deployment: dict) -> dict:
    """scaleFromDeployment (storage.go): metadata name, namespace, uid, resourceVersion, creationTimestamp;
    spec.replicas (omitempty in autoscaling/v1, so 0 is left out); status.replicas (always there) and the
    selector as a string (LabelSelectorAsSelector: keys sorted; matchExpressions not modelled)."""
    meta = deployment["metadata"]
    spec = deployment.get("spec") or {}
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta}
    status: dict[str, Any] = {"replicas": (deployment.get("status") or {}).get("replicas", 0)}
    if labels:
        status["selector"] = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    replicas = spec.get("replicas", 1)
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": replicas} if replicas else {},
        "status": status,
    }


def _group(name: str, versions: Sequence[str]) -> dict:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def _served_group_versions() -> set[tuple[str, str]]:
    return {(g, v) for g, vs in API_GROUPS for v in vs}


def _resource_list(group: str, version: str) -> dict:
    entries = [r.discovery() for r in RESOURCES if r.group == group and r.version == version]
    for g, v, sub in SUBRESOURCES:
        if g == group and v == version:
            entries.append({**sub, "verbs": _SUBRESOURCE_VERBS[sub["name"].split("/", 1)[1]]})
    entries.sort(key=lambda e: e["name"])
    gv = f"{group}/{version}" if group else version
    head: dict[str, Any] = {"kind": "APIResourceList"}
    if group:  # the legacy /api/v1 answer carries no apiVersion
        head["apiVersion"] = "v1"
    return {**head, "groupVersion": gv, "resources": entries}


def _route(segs: list[str]) -> _Route | None:
    """/api/v1/[namespaces/<ns>/]<plural>[/<name>[/<sub>]] and /apis/<g>/<v>/..."""
    if len(segs) >= 3 and segs[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", segs[2:]
    elif len(segs) >= 4 and segs[0] == "apis" and (segs[1], segs[2]) in _served_group_versions():
        group, version, rest = segs[1], segs[2], segs[3:]
    else:
        return None
    by_name = {r.name: r for r in RESOURCES if r.group == group and r.version == version}
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] in by_name and by_name[rest[2]].namespaced:
        namespace, rest = rest[1], rest[2:]
    res = by_name.get(rest[0])
    if res is None or len(rest) > 3:
        return _Route(None, None, None, None, version)
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if res.namespaced and namespace is None and name is not None:
        return _Route(None, None, None, None, version)
    return _Route(res, namespace, name, sub, version)


def _gv(res: ApiResource, route: _Route) -> str:
    return f"{res.group}/{route.version}" if res.group else route.version


def _served(obj: dict, route: _Route) -> dict:
    out = copy.deepcopy(obj)
    assert route.res is not None
    out["apiVersion"] = _gv(route.res, route)
    return _ordered(out)


__all__ = ["ExecStdin", "KubeApi", "PodNotFound", "Request", "json_merge_patch", "parse_label_selector", "status_body"]
