"""The sandbox the contract runs containers in (tests/support/sandbox.py), on a synthetic pod.

A process in it is who the securityContext says (container over pod; fsGroup and supplementalGroups as
supplementary groups; no capabilities; no_new_privs), sees a read-only root with the checkout and the venv
readable but not writable, writes only its writable volumes (set up with the kubelet's modes and fsGroup
ownership), gets exactly the container's environment, and is killed at its memory limit.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import pytest

from tests.support import sandbox as sb
from tests.support.postgres import wait_until

REASON = sb.unavailable_reason()
requires_sandbox = pytest.mark.skipif(REASON is not None, reason=f"the sandbox cannot run here: {REASON}")
CGROUP, CGROUP_NOTE = sb.memory_cgroup_parent() if REASON is None else (None, "no sandbox")

UID, GID, FS_GROUP, SUPPLEMENTAL, CONTAINER_UID = 10001, 10002, 10003, 10004, 10005
POD = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": GID,
        "fsGroup": FS_GROUP,
        "supplementalGroups": [SUPPLEMENTAL],
    },
    "volumes": [
        {"name": "scratch", "emptyDir": {}},
        {"name": "frozen", "emptyDir": {}},
        {"name": "creds", "secret": {"secretName": "s", "defaultMode": 0o440, "items": [{"key": "k", "path": "pw"}]}},
    ],
}
RESTRICTED = {
    "runAsNonRoot": True,
    "runAsUser": CONTAINER_UID,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
CONTAINER = {
    "name": "probe",
    "securityContext": RESTRICTED,
    "resources": {"limits": {"memory": "64Mi"}},
    "volumeMounts": [
        {"name": "scratch", "mountPath": "/scratch"},
        {"name": "frozen", "mountPath": "/frozen", "readOnly": True},
        {"name": "creds", "mountPath": "/run/secrets/creds"},
    ],
}
IMAGE = sb.Image("test image", env={}, uid=65534, gid=65534, dirs={"/tmp": (0o1777, 0, 0)})
# LANG set: unset, Python itself would add LC_CTYPE (PEP 538 locale coercion).
ENV = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", "LANG": "C.UTF-8", "ONLY": "this"}


# -- the security context, as Kubernetes reads it -----------------------------------------------


def test_container_overrides_pod_and_groups_are_gid_fsgroup_and_supplemental() -> None:
    ident = sb.identity(POD, CONTAINER, IMAGE)
    assert (ident.uid, ident.gid) == (CONTAINER_UID, GID)
    assert ident.groups == (GID, FS_GROUP, SUPPLEMENTAL)
    assert ident.capabilities == ()
    assert ident.no_new_privs is True


def test_image_user_when_nothing_is_rendered_and_runtime_default_capabilities() -> None:
    container = {"name": "c", "securityContext": {"capabilities": {"drop": ["NET_RAW"], "add": ["NET_ADMIN"]}}}
    ident = sb.identity({}, container, IMAGE)
    assert (ident.uid, ident.gid, ident.groups) == (65534, 65534, (65534,))
    assert "NET_RAW" not in ident.capabilities and "CHOWN" in ident.capabilities
    assert ident.capabilities[-1] == "NET_ADMIN"
    assert ident.no_new_privs is False  # allowPrivilegeEscalation defaults to true


@pytest.mark.parametrize(
    ("pod_ctx", "ctx", "message"),
    [
        ({"runAsNonRoot": True}, {"runAsUser": 0}, "runAsNonRoot is true but the container would run as uid 0"),
        ({}, {"privileged": True}, "privileged containers are not emulated"),
    ],
    ids=["non-root-as-root", "privileged"],
)
def test_what_the_kubelet_refuses_or_the_sandbox_cannot_do(pod_ctx, ctx, message) -> None:
    with pytest.raises(sb.SandboxError, match=message):
        sb.identity({"securityContext": pod_ctx}, {"name": "c", "securityContext": ctx}, IMAGE)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("256Mi", 256 * 2**20), ("1Gi", 2**30), ("1.5Gi", 3 * 2**29), ("100Ki", 102400), ("1G", 10**9), ("512", 512)],
)
def test_memory_quantities(quantity: str, expected: int) -> None:
    assert sb.memory_bytes(quantity) == expected


def test_unreadable_memory_quantity_is_an_error() -> None:
    with pytest.raises(sb.SandboxError, match="memory quantity"):
        sb.memory_bytes("lots")


def test_failed_writes_are_found_in_logs() -> None:
    log = "\n".join(
        [
            "Error: [Errno 30] Read-only file system: '/tmp/atlas-metrics'",
            'FATAL:  could not create lock file "/var/run/postgresql/.s.PGSQL.5432.lock": Read-only file system',
            "touch: cannot touch '/x': Read-only file system",
            "FileNotFoundError: No usable temporary directory found in ['/tmp', '/var/tmp', '/usr/tmp', '/']",
            "PermissionError: [Errno 13] Permission denied: '/run/secrets/pw'",
        ]
    )
    assert sb.write_failures(log) == [
        ("/tmp/atlas-metrics", "Read-only file system"),
        ("/var/run/postgresql/.s.PGSQL.5432.lock", "Read-only file system"),
        ("/x", "Read-only file system"),
        ("/tmp, /var/tmp, /usr/tmp, /", "no usable temporary directory"),
        ("/run/secrets/pw", "Permission denied"),
    ]


# -- a process in the sandbox --------------------------------------------------------------------

INSPECT = r"""
import json, os, sys
def status():
    keep = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")
    out = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in keep:
            out[key] = value.split()
    return out
def write(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return "ok"
    except OSError as exc:
        return exc.strerror
def mode(path):
    st = os.stat(path)
    return [oct(st.st_mode & 0o7777), st.st_uid, st.st_gid]
paths = json.loads(sys.argv[1])
print(json.dumps({
    "status": status(),
    "env": dict(os.environ),
    "cwd": os.getcwd(),
    "writes": {p: write(p) for p in paths},
    "modes": {p: mode(p) for p in ("/scratch", "/frozen", "/run/secrets/creds", "/run/secrets/creds/pw")},
    "secret": open("/run/secrets/creds/pw").read(),
    "visible": os.readlink("/run/secrets/creds/pw"),
    "readme": len(open(sys.argv[2]).read()) > 0,
    "tmp": sorted(os.listdir("/tmp")),
}))
"""


@pytest.fixture
def pod():
    with sb.Pod("sandbox-test", POD, secret_data=lambda name, key: f"{name}/{key}") as pod:
        yield pod


@requires_sandbox
def test_a_sandboxed_process_is_who_the_security_context_says_and_writes_only_its_volumes(pod) -> None:
    marker = tempfile.NamedTemporaryFile(dir="/tmp", prefix="host-only-")  # noqa: SIM115 - closed below
    paths = [
        "/scratch/file",
        "/frozen/file",
        "/run/secrets/creds/pw",
        "/file-in-root",
        "/etc/file",
        "/usr/file",
        "/tmp/file",
        os.path.join(sb.REPO_ROOT, "file"),
        os.path.join(sys.prefix, "file"),
    ]
    readme = os.path.join(sb.REPO_ROOT, "README.md")
    try:
        done = pod.container(CONTAINER, IMAGE).run(
            ["python", "-c", INSPECT, json.dumps(paths), readme], ENV, timeout=60
        )
    finally:
        marker.close()
    assert done.returncode == 0, done.output
    seen = json.loads(done.output)
    status = seen["status"]
    assert status["Uid"] == [str(CONTAINER_UID)] * 4
    assert status["Gid"] == [str(GID)] * 4
    assert sorted(map(int, status["Groups"])) == [GID, FS_GROUP, SUPPLEMENTAL]
    assert {k: int(v[0], 16) for k, v in status.items() if k.startswith("Cap")} == dict.fromkeys(
        ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), 0
    )
    assert status["NoNewPrivs"] == ["1"]
    assert seen["env"] == ENV, "the container's environment, nothing from the test runner"
    assert seen["cwd"] == "/"
    assert seen["writes"] == {
        "/scratch/file": "ok",  # an emptyDir
        "/frozen/file": "Read-only file system",  # readOnly: true
        "/run/secrets/creds/pw": "Read-only file system",  # secret volumes are always read-only
        "/file-in-root": "Read-only file system",
        "/etc/file": "Read-only file system",
        "/usr/file": "Read-only file system",
        "/tmp/file": "Read-only file system",  # the image's /tmp, no volume there: part of the root
        os.path.join(sb.REPO_ROOT, "file"): "Read-only file system",
        os.path.join(sys.prefix, "file"): "Read-only file system",
    }
    assert seen["readme"] is True, "the checkout stays readable"
    # The host's /tmp is not visible; only the mount points of the code, when the checkout is under /tmp (CI's clone).
    code_mount_points = sorted(
        {os.path.relpath(p, "/tmp").split(os.sep)[0] for p in sb._code_paths() if sb._within(p, "/tmp")}
    )
    assert seen["tmp"] == code_mount_points, "the host's /tmp is not visible"
    # kubelet: emptyDir 0777 + fsGroup (setgid, group rw); secret files defaultMode, group fsGroup.
    assert seen["modes"]["/scratch"] == ["0o2777", 0, FS_GROUP]
    assert seen["modes"]["/frozen"] == ["0o2777", 0, FS_GROUP]
    assert seen["modes"]["/run/secrets/creds/pw"] == ["0o440", 0, FS_GROUP]
    assert seen["secret"] == "s/k"
    assert seen["visible"] == "..data/pw"
    assert os.path.exists(os.path.join(pod.volume_path("scratch"), "file")), "the write landed in the volume"


@requires_sandbox
def test_a_missing_mount_is_reported_with_the_container_and_path(pod) -> None:
    container = pod.container({**CONTAINER, "volumeMounts": []}, IMAGE)
    done = container.run(["python", "-c", "open('/tmp/x', 'w')"], ENV, timeout=60)  # the image's own /tmp
    assert done.returncode != 0
    diagnosis = container.diagnose(done.output)
    assert "container probe (pod sandbox-test) could not write /tmp/x (Read-only file system)" in diagnosis
    assert "its writable volumes: none" in diagnosis


@requires_sandbox
def test_exec_runs_inside_the_running_container(pod) -> None:
    container = pod.container(CONTAINER, IMAGE)
    script = "import time; open('/scratch/hello', 'w').write('inside'); time.sleep(60)"
    running = container.start(["python", "-c", script], ENV)
    try:
        hello = os.path.join(pod.volume_path("scratch"), "hello")
        wait_until(lambda: os.path.exists(hello) or running.poll() is not None, timeout=30)
        assert running.poll() is None, running.logs()
        done = running.exec(["sh", "-c", "cat /scratch/hello; echo; id -u; echo $ONLY"], ENV, timeout=30)
        assert done.returncode == 0, done.output
        assert done.output.split() == ["inside", str(CONTAINER_UID), "this"]
        assert running.status()["Uid"] == [CONTAINER_UID] * 4
        assert running.writable_mounts() == ["/scratch"]
    finally:
        running.stop(grace=5)


@requires_sandbox
def test_a_persistent_volume_is_a_fresh_filesystem_owned_for_fsgroup() -> None:
    claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
    with sb.Pod("pvc-test", {"securityContext": {"fsGroup": FS_GROUP}}, volume_claims=[claim]) as pod:
        root = pod.volume_path("data")
        assert sorted(os.listdir(root)) == ["lost+found"]
        st = os.stat(root)
        assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == ("0o2775", 0, FS_GROUP)


@requires_sandbox
@pytest.mark.skipif(CGROUP is None, reason=f"memory limits not enforceable here: {CGROUP_NOTE}")
def test_the_memory_limit_kills_a_process_that_exceeds_it(pod) -> None:
    container = pod.container(CONTAINER, IMAGE)  # limits.memory 64Mi
    done = container.run(["python", "-c", "x = bytearray(256 * 2**20); print('allocated')"], ENV, timeout=60)
    assert done.returncode != 0
    assert "allocated" not in done.output
    assert done.description == f"was OOM-killed at its memory limit ({64 * 2**20} bytes)"
    small = container.run(["python", "-c", "x = bytearray(8 * 2**20); print('allocated')"], ENV, timeout=60)
    assert small.returncode == 0, small.output
    assert 8 * 2**20 < small.memory_peak <= 64 * 2**20
