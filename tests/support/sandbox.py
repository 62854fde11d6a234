"""Run one rendered container the way the kubelet would, on this machine, without a container engine.

What is real: the process, its user and groups, its capabilities, no_new_privs, its mount namespace
and what it can write, its memory limit (a cgroup v1 memory controller, where the machine allows it),
and its environment (exactly the container's: nothing leaks in from the test runner).

- User: the rendered ``runAsUser``/``runAsGroup`` (the pod's securityContext, overridden by the
  container's; unset: the image's ``USER``), supplementary groups = the primary gid, ``fsGroup`` and
  ``supplementalGroups`` (as ``id`` shows them in a pod: kubernetes.io/docs/tasks/configure-pod-container/
  security-context). ``runAsNonRoot`` with uid 0 is refused, as the kubelet refuses it.
- Capabilities: the bounding set is the container runtime's default set minus ``capabilities.drop``
  plus ``add`` (``drop: [ALL]`` clears it); no inheritable or ambient capabilities; a non-root user
  ends with CapEff 0. ``allowPrivilegeEscalation: false`` sets no_new_privs. (setpriv, util-linux.)
- Filesystem: ``unshare --mount --uts --ipc``; the container's root is a fresh tmpfs holding the
  image's directories, the host's /usr and /etc read-only (the stand-in for the image's system files)
  with the image's /etc/passwd and /etc/group bound over the host's, the project checkout and the
  Python interpreter read-only (where "the image's" code lives here), a minimal /dev, /proc and a
  read-only /sys; then the pod's volumes at their rendered mountPaths, and the root is made read-only
  when ``readOnlyRootFilesystem`` is true. So the only writable paths are the volumes (and the
  container's private /dev/shm, as a container runtime gives one). Then chroot, setpriv, and
  ``env -C <WORKDIR>`` exec the command, so the started pid is the container's main process.
- Memory: a child of this process's memory cgroup with ``memory.limit_in_bytes`` (and
  ``memory.memsw.limit_in_bytes`` where present: no swap beyond it) from ``resources.limits.memory``;
  OOM kills are reported; the peak includes page cache, as cgroup v1 counts it. Skipped with a note
  when the controller is not there or not writable.
- Exec probes: ``Running.exec`` runs a command inside the running container (nsenter into its
  namespaces and root, the same user and capabilities, the same cgroup), as the kubelet's exec does.

What is emulated (the volume setup the kubelet does before it starts a container), from
kubernetes/kubernetes:

- emptyDir: a fresh directory, mode 0777 (``pkg/volume/emptydir/empty_dir.go`` @
  e62f9625cf608aecbaf2f39e813bfb9570b01fd7), then the fsGroup ownership change of
  ``pkg/volume/volume_linux.go`` (SetVolumeOwnership / changeFilePermission @
  7dd8853fa0291d32159b74e9887a06384747572c): group = fsGroup, files |= 0660 (0440 for read-only
  volumes), directories also |= setgid and 0110;
- secret / configMap: the files the atomic writer lays out (``pkg/volume/util/atomic_writer.go`` @
  19e8ce761f25f5ad954027875206a402acb905b8: a ``..<timestamp>`` directory holding the items with
  their mode (item mode, else defaultMode, else 0644), ``..data`` linking to it, one visible link per
  item), then the same ownership change as a read-only volume (``pkg/volume/secret/secret.go`` @
  895cb60b59e32e965617e4ee2b6a3bc6a9c00267), mounted read-only;
- persistentVolumeClaim (a StatefulSet's volumeClaimTemplates): a freshly formatted ext4 volume
  (root 0755 root:root with ``lost+found``), then the fsGroup ownership change. Minikube's hostPath
  provisioner differs (a 0777 directory, no fsGroup change); this is the stricter case.

Not reproduced: the image's own filesystem (the host's /usr and /etc stand in for it: same paths,
other contents), seccomp (RuntimeDefault is not applied), the PID and network namespaces (the
process sees the host's PIDs and listens on the host's loopback), CPU limits, emptyDir sizeLimit
(the kubelet enforces it by eviction), the kubelet-managed /etc/hosts and /etc/resolv.conf, and the
service-link environment variables. A writable root (readOnlyRootFilesystem false) is writable only
where the host's directories are not bound (they stay read-only).

Needs root (namespaces, mounts, setpriv to another uid) and util-linux's unshare/setpriv/nsenter;
``unavailable_reason()`` says why not when the machine does not allow it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .signals import reset_signals

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class SandboxError(AssertionError):
    """The pod spec asks for something the sandbox does not emulate, or the machine refused a step."""


# -- what the machine offers -------------------------------------------------------------------

_TOOLS = ("unshare", "setpriv", "nsenter", "chroot", "mount", "env", "sh", "mkdir", "touch", "chown", "chmod", "ln")


@functools.cache
def _tool(name: str) -> str | None:
    return shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


@functools.cache
def unavailable_reason() -> str | None:
    """None when containers can be sandboxed here, else why not (one line)."""
    if sys.platform != "linux":
        return f"not Linux ({sys.platform})"
    if os.geteuid() != 0:
        return "not root: namespaces, mounts and running as another uid need root"
    missing = [t for t in _TOOLS if _tool(t) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (util-linux, coreutils)"
    probe = subprocess.run(
        [_tool("unshare"), "--mount", "--uts", "--ipc", "--propagation", "private", _tool("sh"), "-c", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"unshare --mount refused: {probe.stderr.strip()}"
    return None


def _memory_cgroup_mount() -> tuple[str, str] | None:
    """(mount point, root within the hierarchy) of the cgroup v1 memory controller."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fstype, _source, options = [*right.split(), "", "", ""][:3]
                if fstype == "cgroup" and "memory" in options.split(","):
                    fields = left.split()
                    return fields[4], fields[3]
    except OSError:
        return None
    return None


@functools.cache
def memory_cgroup_parent() -> tuple[str | None, str]:
    """(directory under which to make per-container memory cgroups, or None; a note saying why not)."""
    found = _memory_cgroup_mount()
    if found is None:
        return None, "no cgroup v1 memory controller mounted (cgroup v2 only, or none)"
    mountpoint, root = found
    relative = None
    with open("/proc/self/cgroup") as f:
        for line in f:
            _id, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(","):
                relative = path
    if relative is None:
        return None, "this process is in no memory cgroup"
    if root != "/" and relative.startswith(root):
        relative = relative[len(root) :]
    parent = os.path.join(mountpoint, relative.lstrip("/"))
    probe = os.path.join(parent, f"atlas-sandbox-probe-{uuid.uuid4().hex[:8]}")
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as exc:
        return None, f"memory cgroup {parent} is not writable ({exc.strerror})"
    return parent, f"memory limits enforced under {parent}"


# -- Kubernetes quantities and security contexts -------------------------------------------------

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def memory_bytes(quantity: str | int) -> int:
    """A Kubernetes memory quantity ("256Mi", "1G", "128974848", "1e9") in bytes."""
    text = str(quantity).strip()
    match = re.fullmatch(r"([0-9.]+(?:[eE][0-9]+)?)([KMGTPE]i|[kMGTPE])?", text)
    if not match:
        raise SandboxError(f"memory quantity {quantity!r} is not one the sandbox can read")
    number, suffix = match.groups()
    factor = _BINARY.get(suffix or "", 0) or _DECIMAL.get(suffix or "", 1)
    return int(float(number) * factor)


# The container runtime's default bounding set (containerd/CRI-O: the Docker default set).
DEFAULT_CAPABILITIES = (
    *("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP", "SETPCAP"),
    *("NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"),
)


@dataclass(frozen=True)
class Identity:
    """Who the container's process is, as the kubelet and the runtime set it up."""

    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary
    capabilities: tuple[str, ...]  # bounding set, upper case without CAP_
    no_new_privs: bool


@dataclass(frozen=True)
class Image:
    """What the sandbox stands in for an image: its ENV, USER, WORKDIR, ENTRYPOINT/CMD, own directories
    and /etc/passwd + /etc/group (the rest of its filesystem is the host's /usr and /etc)."""

    name: str
    env: Mapping[str, str]
    uid: int
    gid: int
    workdir: str = "/"
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    # path -> (mode, uid, gid): directories the image's filesystem has, which the pod may mount over
    dirs: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    passwd: str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    group: str = "root:x:0:\nnogroup:x:65534:\n"
    stop_signal: int = signal.SIGTERM


def identity(pod_spec: Mapping, container: Mapping, image: Image) -> Identity:
    """The process identity with Kubernetes' precedence: the container's securityContext over the pod's."""
    pod_ctx = pod_spec.get("securityContext") or {}
    ctx = container.get("securityContext") or {}
    label = f"container {container.get('name')}"
    if ctx.get("privileged"):
        raise SandboxError(f"{label}: privileged containers are not emulated")
    uid = ctx.get("runAsUser", pod_ctx.get("runAsUser", image.uid))
    gid = ctx.get("runAsGroup", pod_ctx.get("runAsGroup", image.gid))
    if ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) and uid == 0:
        raise SandboxError(f"{label}: runAsNonRoot is true but the container would run as uid 0 (the kubelet refuses)")
    groups = {int(gid), *(int(g) for g in pod_ctx.get("supplementalGroups") or [])}
    if pod_ctx.get("fsGroup") is not None:
        groups.add(int(pod_ctx["fsGroup"]))
    caps = ctx.get("capabilities") or {}
    drop = {c.upper().removeprefix("CAP_") for c in caps.get("drop") or []}
    add = [c.upper().removeprefix("CAP_") for c in caps.get("add") or []]
    bounding = [] if "ALL" in drop else [c for c in DEFAULT_CAPABILITIES if c not in drop]
    bounding += [c for c in add if c not in bounding]
    return Identity(
        uid=int(uid),
        gid=int(gid),
        groups=tuple(sorted(groups)),
        capabilities=tuple(bounding),
        no_new_privs=ctx.get("allowPrivilegeEscalation") is False,
    )


# -- what a process looks like from the host -----------------------------------------------------


def process_status(pid: int) -> dict[str, object]:
    """Uid/Gid/Groups/Cap*/NoNewPrivs of a running process, from /proc/<pid>/status."""
    wanted = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")
    status: dict[str, object] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                status[key] = [int(v) for v in value.split()]
            elif key.startswith("Cap"):
                status[key] = int(value.strip(), 16)
            elif key == "NoNewPrivs":
                status[key] = int(value.strip())
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        status["cmdline"] = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    return {k: status[k] for k in (*wanted, "cmdline") if k in status}


_PSEUDO = ("/proc", "/sys", "/dev")


def writable_mounts(pid: int) -> list[str]:
    """Mount points the process sees read-write, /proc, /sys and /dev (and below) left out."""
    points = []
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            fields = line.split()
            point, options = fields[4], fields[5].split(",")
            if "rw" in options and not any(point == p or point.startswith(p + "/") for p in _PSEUDO):
                points.append(point.encode().decode("unicode_escape"))
    return sorted(set(points))


# -- "could not write" in a container's log ------------------------------------------------------

_WRITE_FAILURES = (
    # Python: OSError's str(), e.g. [Errno 30] Read-only file system: '/tmp/atlas-metrics'
    re.compile(r"\[Errno \d+\] (?P<reason>Read-only file system|Permission denied): '(?P<path>/[^']*)'"),
    # C programs (PostgreSQL): could not create lock file "/var/run/postgresql/...": Read-only file system
    re.compile(r"\"(?P<path>/[^\"]*)\": (?P<reason>Read-only file system|Permission denied)"),
    # coreutils and shells: mkdir: cannot create directory '/x': Read-only file system
    re.compile(r"'(?P<path>/[^']*)': (?P<reason>Read-only file system|Permission denied)"),
    # Python's tempfile when no candidate directory is writable (gunicorn's worker heartbeat files)
    re.compile(r"No usable temporary directory found in \[(?P<path>[^\]]*)\]()(?P<reason>)"),
)


def write_failures(log: str) -> list[tuple[str, str]]:
    """(path, reason) for every failed write the log reports, in order, without repeats."""
    found: list[tuple[str, str]] = []
    for line in log.splitlines():
        for pattern in _WRITE_FAILURES:
            for match in pattern.finditer(line):
                path = match.group("path").replace("'", "")
                item = (path, match.group("reason") or "no usable temporary directory")
                if item not in found:
                    found.append(item)
    return found


# -- a pod: its volumes, set up as the kubelet would ---------------------------------------------


def _set_volume_ownership(root: str, fs_group: int | None, read_only: bool) -> None:
    """kubelet's SetVolumeOwnership: group fsGroup, rw (or ro) for the group, setgid + x on directories."""
    if fs_group is None:
        return
    mask = 0o440 if read_only else 0o660
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in [*filenames, *dirnames]:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            _change_permission(path, fs_group, mask)
    _change_permission(root, fs_group, mask)


def _change_permission(path: str, fs_group: int, mask: int) -> None:
    info = os.lstat(path)
    os.chown(path, info.st_uid, fs_group)
    mode = info.st_mode & 0o7777 | mask
    if os.path.isdir(path):
        mode |= 0o2000 | 0o110
    os.chmod(path, mode)


@dataclass
class Mount:
    path: str  # inside the container
    source: str  # on the host
    read_only: bool


class Pod:
    """One pod's volumes on the host, shared by its containers (init containers and main alike)."""

    def __init__(
        self,
        name: str,
        spec: Mapping,
        *,
        volume_claims: Iterable[Mapping] = (),
        secret_data: Callable[[str, str], str] | None = None,
        config_map_data: Callable[[str], Mapping[str, str]] | None = None,
    ) -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise SandboxError(f"the sandbox cannot run here: {reason}")
        self.name = name
        self.spec = spec
        self.workdir = tempfile.mkdtemp(prefix=f"atlas-pod-{name}-")  # 0700: only root reaches the volumes
        self.notes: list[str] = []
        self._secret_data = secret_data
        self._config_map_data = config_map_data
        self.volumes: dict[str, tuple[str, bool]] = {}  # name -> (host path, always read-only)
        fs_group = (spec.get("securityContext") or {}).get("fsGroup")
        claims = {c["metadata"]["name"]: c for c in volume_claims}
        declared = list(spec.get("volumes") or [])
        for claim in claims:
            if claim not in {v["name"] for v in declared}:
                declared.append({"name": claim, "persistentVolumeClaim": {"claimName": claim}})
        for volume in declared:
            self.volumes[volume["name"]] = self._set_up(volume, fs_group)

    def _set_up(self, volume: Mapping, fs_group: int | None) -> tuple[str, bool]:
        name = volume["name"]
        path = os.path.join(self.workdir, "volumes", name)
        os.makedirs(path)
        if "emptyDir" in volume:
            os.chmod(path, 0o777)  # noqa: S103 - the kubelet's emptyDir mode
            if (volume["emptyDir"] or {}).get("medium") == "Memory":
                self.notes.append(f"volume {name}: medium Memory is a directory on disk here, not a tmpfs")
            _set_volume_ownership(path, fs_group, read_only=False)
            return path, False
        if "persistentVolumeClaim" in volume:
            os.chmod(path, 0o755)  # noqa: S103 - a fresh ext4 root
            os.mkdir(os.path.join(path, "lost+found"), 0o700)
            _set_volume_ownership(path, fs_group, read_only=False)
            return path, False
        if "secret" in volume or "configMap" in volume:
            kind = "secret" if "secret" in volume else "configMap"
            source = volume[kind]
            os.chmod(path, 0o777)  # noqa: S103 - secret/configMap wrap an emptyDir
            if kind == "secret":
                if self._secret_data is None:
                    raise SandboxError(f"volume {name}: no Secret data given to the pod")
                ref = source["secretName"]

                def lookup(key: str) -> str:
                    return self._secret_data(ref, key)

                keys = [i["key"] for i in source.get("items") or []]
            else:
                if self._config_map_data is None:
                    raise SandboxError(f"volume {name}: no ConfigMap data given to the pod")
                data = self._config_map_data(source["name"])

                def lookup(key: str) -> str:
                    return data[key]

                keys = [i["key"] for i in source.get("items") or []] or list(data)
            if kind == "secret" and not source.get("items"):
                raise SandboxError(f"volume {name}: a secret volume without items is not emulated (list its keys)")
            items = source.get("items") or [{"key": k, "path": k} for k in keys]
            self._atomic_write(
                path, {i["path"]: (lookup(i["key"]), i.get("mode", source.get("defaultMode", 0o644))) for i in items}
            )
            _set_volume_ownership(path, fs_group, read_only=True)
            return path, True
        kinds = sorted(k for k in volume if k != "name")
        raise SandboxError(f"volume {name}: type {kinds} is not emulated by the sandbox")

    @staticmethod
    def _atomic_write(target: str, payload: Mapping[str, tuple[str, int]]) -> None:
        stamp = time.strftime("%Y_%m_%d_%H_%M_%S")
        data_dir = tempfile.mkdtemp(prefix=f"..{stamp}.", dir=target)
        os.chmod(data_dir, 0o755)  # noqa: S103 - the atomic writer's mode
        for relative, (content, mode) in payload.items():
            full = os.path.join(data_dir, relative)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(content)
            os.chmod(full, mode)
        os.symlink(os.path.basename(data_dir), os.path.join(target, "..data"))
        for relative in payload:
            depth = relative.count("/")
            visible = os.path.join(target, relative)
            os.makedirs(os.path.dirname(visible), exist_ok=True)
            os.symlink(os.path.join("../" * depth, "..data", relative), visible)

    def volume_path(self, name: str) -> str:
        """Where volume ``name`` lives on the host (for tests to look at what the container wrote)."""
        return self.volumes[name][0]

    def mounts(self, container: Mapping) -> list[Mount]:
        mounts = []
        for vm in container.get("volumeMounts") or []:
            label = f"container {container['name']}: volumeMount {vm.get('name')}"
            if vm["name"] not in self.volumes:
                raise SandboxError(f"{label}: no such volume in the pod")
            if vm.get("subPath") or vm.get("subPathExpr"):
                raise SandboxError(f"{label}: subPath mounts are not emulated")
            source, always_ro = self.volumes[vm["name"]]
            mounts.append(Mount(vm["mountPath"], source, always_ro or bool(vm.get("readOnly"))))
        return mounts

    def container(self, container: Mapping, image: Image) -> Container:
        return Container(self, container, image)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Pod:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- a container: the mount namespace, the identity, the cgroup ---------------------------------


def _code_paths() -> list[str]:
    """Host directories "the image's" code lives in here: the checkout, the venv, the interpreter."""
    candidates = [REPO_ROOT, sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    paths = [f"/{d}" for d in _SYSTEM_DIRS]  # already bound (a system Python's base_prefix is /usr)
    for path in sorted({os.path.realpath(p) for p in candidates}, key=len):
        if not any(_within(path, p) for p in paths):
            paths.append(path)
    return paths[len(_SYSTEM_DIRS) :]


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
_SYSTEM_DIRS = ("usr", "etc")
_TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


@dataclass
class Completed:
    returncode: int
    output: str  # stdout and stderr, interleaved as the container log has them
    description: str = ""  # "exited 1", "was OOM-killed at its memory limit (...)"
    memory_peak: int | None = None  # bytes, when the memory cgroup was there


class Container:
    """One rendered container of a Pod, ready to be run (``run``) or started (``start``)."""

    def __init__(self, pod: Pod, spec: Mapping, image: Image) -> None:
        self.pod = pod
        self.spec = spec
        self.image = image
        self.name = spec["name"]
        self.label = f"container {self.name} (pod {pod.name})"
        self.identity = identity(pod.spec, spec, image)
        self.mount_list = pod.mounts(spec)
        self.read_only_root = (spec.get("securityContext") or {}).get("readOnlyRootFilesystem") is True
        limit = ((spec.get("resources") or {}).get("limits") or {}).get("memory")
        self.memory_limit = memory_bytes(limit) if limit is not None else None
        self.notes: list[str] = []
        self._runs = 0

    # -- the parts of the setup script ----------------------------------------------------------
    def writable_paths(self) -> list[str]:
        return sorted(m.path for m in self.mount_list if not m.read_only)

    def _script(self, root: str, files: Mapping[str, str], cgroup: str | None, env: Mapping[str, str]) -> str:
        q = shlex.quote
        tool = {t: q(_tool(t)) for t in _TOOLS}
        lines = ["set -eu"]
        if cgroup:
            lines.append(f"echo $$ > {q(os.path.join(cgroup, 'cgroup.procs'))}")
        hostname = _tool("hostname")
        if hostname:
            lines.append(f"{q(hostname)} {q(self.pod.name[:63])}")
        # Absolute tools: the script runs with the container's environment, PATH included.
        mount, mkdir, touch, chown, chmod, ln = (tool[t] for t in ("mount", "mkdir", "touch", "chown", "chmod", "ln"))
        r = q(root)

        def bind_ro(source: str, target: str, *, kind: str = "-d") -> None:
            make = f"{mkdir} -p {q(target)}" if kind == "-d" else f"[ -e {q(target)} ] || {touch} {q(target)}"
            lines.extend(
                [
                    make,
                    f"{mount} --bind {q(source)} {q(target)}",
                    f"{mount} -o remount,bind,ro,nosuid,nodev {q(target)}",
                ]
            )

        lines.append(f"{mount} -t tmpfs -o mode=0755,nosuid,nodev,size=16m sandbox-root {r}")
        for name in _SYSTEM_DIRS:
            bind_ro(f"/{name}", f"{root}/{name}")
        for name in _TOP_LEVEL:
            host = f"/{name}"
            if os.path.islink(host):
                lines.append(f"{ln} -s {q(os.readlink(host))} {q(root + host)}")
            elif os.path.isdir(host):
                bind_ro(host, root + host)
        # /dev as a container runtime makes it: a small tmpfs with the usual devices, a private /dev/shm.
        lines += [f"{mkdir} {r}/dev", f"{mount} -t tmpfs -o mode=0755,nosuid,size=64k sandbox-dev {r}/dev"]
        for device in _DEVICES:
            if os.path.exists(f"/dev/{device}"):
                lines += [f"{touch} {r}/dev/{device}", f"{mount} --bind /dev/{device} {r}/dev/{device}"]
        lines += [
            f"{mkdir} {r}/dev/shm {r}/dev/pts",
            f"{mount} -t tmpfs -o nosuid,nodev,mode=1777,size=64m sandbox-shm {r}/dev/shm",
            f"{ln} -s /proc/self/fd {r}/dev/fd",
            f"{ln} -s /proc/self/fd/0 {r}/dev/stdin",
            f"{ln} -s /proc/self/fd/1 {r}/dev/stdout",
            f"{ln} -s /proc/self/fd/2 {r}/dev/stderr",
            f"{mkdir} {r}/proc {r}/sys",
            f"{mount} -t proc -o nosuid,nodev,noexec proc {r}/proc",
            f"{mount} --bind /sys {r}/sys",
            f"{mount} -o remount,bind,ro,nosuid,nodev,noexec {r}/sys",
        ]
        for path in _code_paths():
            bind_ro(path, root + path)
        for path, (mode, uid, gid) in sorted(self.image.dirs.items()):
            lines += [
                f"{mkdir} -p {q(root + path)}",
                f"{chown} {uid}:{gid} {q(root + path)}",
                f"{chmod} {mode:o} {q(root + path)}",
            ]
        for target, source in files.items():
            bind_ro(source, root + target, kind="-f")
        shared = [f"/{d}" for d in _SYSTEM_DIRS] + _code_paths()
        for m in sorted(self.mount_list, key=lambda m: m.path.count("/")):
            target = os.path.normpath(root + m.path)
            inside = [p for p in shared if _within(m.path, p)]
            if inside:
                raise SandboxError(
                    f"{self.label}: mountPath {m.path} is in {inside[0]}, which the sandbox shares read-only"
                )
            lines += [f"{mkdir} -p {q(target)}", f"{mount} --bind {q(m.source)} {q(target)}"]
            if m.read_only:
                lines.append(f"{mount} -o remount,bind,ro {q(target)}")
            # A checkout (and its venv) under a volume's path, e.g. CI's clone in /tmp under the pod's /tmp
            # emptyDir: bound again on top, read-only, so the code stays where the rendered command finds it.
            # (The mount point is an empty directory in the volume: the only trace the host's layout leaves.)
            for path in (p for p in _code_paths() if _within(p, m.path)):
                bind_ro(path, root + path)
        if self.read_only_root:
            lines.append(f"{mount} -o remount,bind,ro {r}")
        lines.append(f'exec {tool["chroot"]} {r} {" ".join(q(a) for a in self._setpriv(env))} "$@"')
        return "\n".join(lines) + "\n"

    def _setpriv(self, env: Mapping[str, str]) -> list[str]:
        ident = self.identity
        argv = [_tool("setpriv"), f"--reuid={ident.uid}", f"--regid={ident.gid}"]
        argv.append(f"--groups={','.join(map(str, ident.groups))}" if ident.groups else "--clear-groups")
        caps = ",".join(["-all", *(f"+{c.lower()}" for c in ident.capabilities)])
        argv += ["--inh-caps=-all", "--ambient-caps=-all", f"--bounding-set={caps}"]
        if ident.no_new_privs:
            argv.append("--no-new-privs")
        # env -C: the image's WORKDIR; -u PWD: the shell above would otherwise hand its own on.
        argv += ["--", _tool("env"), "-C", self.image.workdir]
        if "PWD" not in env:
            argv += ["-u", "PWD"]
        return [*argv, "--"]

    def _cgroup(self) -> str | None:
        parent, note = memory_cgroup_parent()
        if self.memory_limit is None:
            self.notes.append(f"{self.label}: no memory limit rendered")
            return None
        if parent is None:
            self.notes.append(f"{self.label}: memory limit {self.memory_limit} bytes NOT enforced: {note}")
            return None
        path = os.path.join(parent, f"atlas-{self.pod.name}-{self.name}-{uuid.uuid4().hex[:8]}")
        os.mkdir(path)
        with open(os.path.join(path, "memory.limit_in_bytes"), "w") as f:
            f.write(str(self.memory_limit))
        swap = os.path.join(path, "memory.memsw.limit_in_bytes")
        if os.path.exists(swap):  # no swap beyond the limit either, as on a node without swap
            with open(swap, "w") as f:
                f.write(str(self.memory_limit))
        return path

    def _prepare(self, env: Mapping[str, str]) -> tuple[list[str], str, str | None]:
        self._runs += 1
        rundir = os.path.join(self.pod.workdir, f"{self.name}-{self._runs}")
        root = os.path.join(rundir, "root")
        os.makedirs(root)
        files = {}
        for name in ("passwd", "group"):
            path = os.path.join(rundir, name)
            with open(path, "w") as f:
                f.write(getattr(self.image, name))
            os.chmod(path, 0o644)
            files[f"/etc/{name}"] = path
        cgroup = self._cgroup()
        script = os.path.join(rundir, "setup.sh")
        with open(script, "w") as f:
            f.write(self._script(root, files, cgroup, env))
        unshare = [_tool("unshare"), "--mount", "--uts", "--ipc", "--propagation", "private"]
        return [*unshare, _tool("sh"), script], os.path.join(rundir, "container.log"), cgroup

    # -- running ---------------------------------------------------------------------------------
    def start(self, argv: list[str], env: Mapping[str, str], stdin: int | None = subprocess.DEVNULL) -> Running:
        """Start the container's process (argv resolved with the container's PATH, as the runtime does)."""
        if not argv:
            raise SandboxError(f"{self.label}: no command")
        launcher, log_path, cgroup = self._prepare(env)
        log = open(log_path, "wb")  # noqa: SIM115 - the process's stdout/stderr for its lifetime
        try:
            proc = subprocess.Popen(
                [*launcher, *argv],
                env=dict(env),
                stdin=stdin,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd="/",
                preexec_fn=reset_signals,  # as runc does (tests/support/signals.py)
            )
        finally:
            log.close()
        return Running(self, proc, log_path, cgroup, argv)

    def run(self, argv: list[str], env: Mapping[str, str], timeout: float, input: str | None = None) -> Completed:
        running = self.start(argv, env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL)
        try:
            if input is not None:
                running.proc.stdin.write(input.encode())
                running.proc.stdin.close()
            running.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            running.kill()
            raise SandboxError(f"{self.label}: {argv[:3]} still running after {timeout}s:\n{running.logs()}") from None
        finally:
            running.cleanup()
        return Completed(
            running.proc.returncode, running.logs(limit=None), running.exit_description(), running.memory_peak
        )

    def diagnose(self, log: str) -> str:
        """One line per failed write (or denied access) in the log, naming the container and the path."""
        writable = ", ".join(self.writable_paths()) or "none"
        root = "read-only" if self.read_only_root else "writable"
        lines = []
        for path, reason in write_failures(log):
            what = f"was denied access to {path}" if reason == "Permission denied" else f"could not write {path}"
            lines.append(
                f"{self.label} {what} ({reason}); its writable volumes: {writable}; its root filesystem is {root}"
            )
        return "\n".join(lines)


class Running:
    """A started container process: its pid is the container's main process (the exec chain ends in it)."""

    def __init__(self, container: Container, proc: subprocess.Popen, log_path: str, cgroup: str | None, argv) -> None:
        self.container = container
        self.proc = proc
        self.log_path = log_path
        self.cgroup = cgroup
        self.argv = argv
        self.memory_peak: int | None = None
        self.oom_killed = False
        self._cleaned = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def logs(self, limit: int | None = 4000) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        return text if limit is None else text[-limit:]

    def status(self) -> dict[str, object]:
        return process_status(self.pid)

    def writable_mounts(self) -> list[str]:
        return writable_mounts(self.pid)

    def exec(self, argv: list[str], env: Mapping[str, str], timeout: float) -> Completed:
        """An exec probe: argv inside the running container (its namespaces, root, user and cgroup)."""
        q = shlex.quote
        enter = [_tool("nsenter"), f"--target={self.pid}", "--mount", "--uts", "--ipc", "--root", "--wd"]
        command = " ".join(q(a) for a in [*enter, *self.container._setpriv(env), *argv])
        script = (
            f"echo $$ > {q(os.path.join(self.cgroup, 'cgroup.procs'))}; exec {command}"
            if self.cgroup
            else f"exec {command}"
        )
        proc = subprocess.run(
            [_tool("sh"), "-c", script], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
        )
        return Completed(proc.returncode, proc.stdout + proc.stderr)

    def stop(self, grace: float, sig: int | None = None) -> float:
        """The container's stop signal (the image's, else SIGTERM), SIGKILL after ``grace``; seconds taken."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig or self.container.image.stop_signal)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
                raise SandboxError(f"{self.container.label} ignored its stop signal for {grace}s") from None
            finally:
                self.cleanup()
        self.cleanup()
        return time.monotonic() - start

    def kill(self) -> None:
        for pid in self._members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def oom_kills(self) -> int:
        """OOM kills in the container's cgroup so far (a worker may be killed while the master lives on)."""
        if not self.cgroup:
            return 0
        try:
            with open(os.path.join(self.cgroup, "memory.oom_control")) as f:
                counters = dict(line.split() for line in f if len(line.split()) == 2)
            return int(counters.get("oom_kill", "0"))
        except (OSError, ValueError):
            return 0

    def _members(self) -> list[int]:
        if not self.cgroup:
            return []
        try:
            with open(os.path.join(self.cgroup, "cgroup.procs")) as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def cleanup(self) -> None:
        """Kill what the container left behind, read its memory figures, remove its cgroup."""
        if self._cleaned or self.proc.poll() is None:
            return
        self._cleaned = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if not self.cgroup:
            return
        for pid in self._members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.oom_killed = self.oom_kills() > 0
        with (
            contextlib.suppress(OSError, ValueError),
            open(os.path.join(self.cgroup, "memory.max_usage_in_bytes")) as f,
        ):
            self.memory_peak = int(f.read())
        for _ in range(50):
            try:
                os.rmdir(self.cgroup)
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.container.notes.append(f"{self.container.label}: cgroup {self.cgroup} could not be removed")

    def exit_description(self) -> str:
        """How the process ended, OOM kills at the rendered limit named."""
        code = self.proc.returncode
        self.oom_killed = self.oom_killed or self.oom_kills() > 0
        if self.oom_killed and code is not None and code < 0:
            return f"was OOM-killed at its memory limit ({self.container.memory_limit} bytes)"
        if self.oom_killed:
            return f"exited {code} after OOM kills at its memory limit ({self.container.memory_limit} bytes)"
        if code is not None and code < 0:
            return f"was killed by signal {signal.Signals(-code).name}"
        return f"exited {code}"
