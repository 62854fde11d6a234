#!/usr/bin/env python3
"""Stand-ins for `docker`, `minikube` and `kubectl` that answer as the real tools do at the versions
Atlas pins, and keep state between calls (profiles, addons, images) in a JSON file.

Invoked through a link named after the tool. Environment:
  STANDIN_STATE   the state file (created on first use)
  STANDIN_LOG     every call is appended here as one JSON list [tool, *args]
State keys the tests set up front: docker.running (bool), build_failures (image refs whose build
fails), status_warning (a warning event minikube prints before the status object).

Where each answer comes from (R = read in the upstream source, M = measured here, G = guessed):
  docker 28.2.2 client, no engine (M: this machine's client, `docker info --format ...`):
    stdout "\n", stderr "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the
    docker daemon running?", exit 1.
  minikube v1.35.0 (R: kubernetes/minikube at tag v1.35.0):
    version --short        cmd/minikube/cmd/version.go: the version and a newline on stdout.
    status -p P -o json    cmd/minikube/cmd/status.go (statusJSON: json.Marshal, no newline; exitCode
                           bits 1|2|4), pkg/minikube/cluster/status.go (fields; a stopped host copies
                           its state), pkg/minikube/mustload/mustload.go Partial + exitTip (missing
                           profile: two messages, exit 85), pkg/minikube/out/out.go + out/register
                           (JSON mode: each message a CloudEvent line on stdout, before the status).
    start                  human text on stdout, exit 0 (G: the wording; nothing parses it). The
                           node gets the addons minikube enables by default (default-storageclass,
                           storage-provisioner: pkg/minikube/assets/addons.go) and its preloaded images.
    addons list -o json    cmd/minikube/cmd/config/addons_list.go printAddonsJSON: one object, every
                           addon -> {"Profile", "Status": enabled|disabled}; no profile -> {} each.
                           (The addon list is a subset of assets.Addons; G: which ones suffice here.)
    addons enable A -p P   human text on stdout, exit 0 (G: wording).
    image ls -p P          pkg/minikube/machine/cache_images.go ListImages (short format, reverse
                           sorted repo tags) and cruntime/docker.go AddDockerIO (docker.io/ prefix).
    image build -t T ...   pkg/minikube/machine/build_images.go BuildImage: a failed build is logged
                           with klog.Warningf (to the log file, not the terminal: cmd/minikube/main.go
                           sets logtostderr=false) and returns nil, so exit 0 (kubernetes/minikube#16576);
                           cruntime/docker.go BuildImage passes docker build's stdout/stderr through.
                           BuildKit writes its plain progress and "ERROR: failed to solve: ..." to
                           stderr (G: the exact lines of a failed pip step).
    any command on a profile that does not exist: mustload's message and exit 85 (R, as status).
  kubectl v1.32.4 version --client: "Client Version: v1.32.4" and "Kustomize Version: v5.5.0" on
    stdout, exit 0 (R: kubernetes/kubectl at tag kubernetes-1.32.4, pkg/cmd/version/version.go and
    go.mod's sigs.k8s.io/kustomize/kustomize/v5 v5.5.0).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import uuid

MINIKUBE_VERSION = "v1.35.0"
KUBERNETES_VERSION = "v1.32.0"  # pkg/minikube/constants/constants.go DefaultKubernetesVersion
EX_GUEST_NOT_FOUND = 85  # pkg/minikube/reason/exitcodes.go
# A subset of pkg/minikube/assets/addons.go; the first two are on after `minikube start`.
ADDONS = ("default-storageclass", "storage-provisioner", "dashboard", "ingress", "ingress-dns", "metrics-server")
DEFAULT_ADDONS = ("default-storageclass", "storage-provisioner")
# What a fresh v1.35.0 node lists (kubeadm images of Kubernetes v1.32.0 and the storage provisioner).
PRELOADED = (
    "registry.k8s.io/kube-apiserver:v1.32.0",
    "registry.k8s.io/kube-controller-manager:v1.32.0",
    "registry.k8s.io/kube-scheduler:v1.32.0",
    "registry.k8s.io/kube-proxy:v1.32.0",
    "registry.k8s.io/etcd:3.5.16-0",
    "registry.k8s.io/coredns/coredns:v1.11.3",
    "registry.k8s.io/pause:3.10",
    "gcr.io/k8s-minikube/storage-provisioner:v5",
)


def _load() -> dict:
    path = os.environ["STANDIN_STATE"]
    if not os.path.exists(path):
        return {"docker": {"running": True}, "profiles": {}, "build_failures": []}
    with open(path) as fh:
        return json.load(fh)


def _save(state: dict) -> None:
    with open(os.environ["STANDIN_STATE"], "w") as fh:
        json.dump(state, fh, indent=1, sort_keys=True)


def _event(kind: str, message: str) -> str:
    # pkg/minikube/out/register/cloud_events.go: cloudevents sdk-go v2 JSON of the event.
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "https://minikube.sigs.k8s.io/",
            "type": f"io.k8s.sigs.minikube.{kind}",
            "datacontenttype": "application/json",
            "data": {"message": message},
        },
        separators=(",", ":"),
    )


def _profile_flag(args: list[str]) -> str:
    for flag in ("-p", "--profile"):
        if flag in args:
            return args[args.index(flag) + 1]
    return "minikube"


def _missing_profile(name: str, json_mode: bool) -> int:
    # mustload.Partial + exitTip; ExampleCmd adds "-p <name>" for a non-default profile.
    start = "minikube start" if name == "minikube" else f"minikube start -p {name}"
    first = f'Profile "{name}" not found. Run "minikube profile list" to view all profiles.'
    second = f'To start a cluster, run: "{start}"'
    if json_mode:
        print(_event("info", first))
        print(_event("info", second))
    else:  # text mode, no terminal: style.LowPrefix instead of the emoji
        print(f"* {first}")
        print(f"  - {second}")
    return EX_GUEST_NOT_FOUND


def _docker_ref(ref: str) -> str:
    first, sep, _ = ref.partition("/")
    if sep and (any(c in first for c in ".:") or "localhost" in first):
        return ref
    return f"docker.io/{ref}" if sep else f"docker.io/library/{ref}"


def docker(args: list[str], state: dict) -> int:
    if args[:1] == ["info"]:
        if not state["docker"]["running"]:
            if "--format" in args:
                print("")
            else:
                print("Client:\n Version:    28.2.2\n Context:    default\n Debug Mode: false\n\nServer:")
            print(
                "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
                file=sys.stderr,
            )
            return 1
        print("28.2.2" if "--format" in args else "Server Version: 28.2.2")
        return 0
    print(f"standin docker: unsupported call {args}", file=sys.stderr)
    return 99


def minikube(args: list[str], state: dict) -> int:
    if args[:1] == ["version"]:
        print(MINIKUBE_VERSION if "--short" in args else f"minikube version: {MINIKUBE_VERSION}\ncommit: dd5d320")
        return 0
    name = _profile_flag(args)
    profile = state["profiles"].get(name)
    json_mode = ("-o", "json") in itertools.pairwise(args) or "--output=json" in args

    if args[:1] == ["start"]:
        if not state["docker"]["running"]:
            print("X Exiting due to PROVIDER_DOCKER_NOT_RUNNING: Cannot connect to the Docker daemon", file=sys.stderr)
            return 60  # reason.ExProviderNotRunning
        fresh = profile is None
        if fresh:
            profile = state["profiles"][name] = {
                "addons": {a: a in DEFAULT_ADDONS for a in ADDONS},
                "images": list(PRELOADED),
                "start_args": args,
            }
        profile["host"] = "Running"
        verb = "Creating docker container" if fresh else "Restarting existing docker container"
        print(f'* [{name}] minikube {MINIKUBE_VERSION} on Debian 12\n* {verb} for "{name}" ...')
        print(f'* Done! kubectl is now configured to use "{name}" cluster and "default" namespace by default')
        return 0
    if args[:1] == ["delete"]:
        state["profiles"].pop(name, None)
        print(f'* Deleting "{name}" in docker ...\n* Removed all traces of the "{name}" cluster.')
        return 0
    if args[:2] == ["addons", "list"]:
        if profile is None:  # addons_list.go: no cluster config -> an empty object per addon
            listing = {a: {} for a in sorted(ADDONS)}
        else:
            listing = {
                a: {"Profile": name, "Status": "enabled" if on else "disabled"}
                for a, on in sorted(profile["addons"].items())
            }
        sys.stdout.write(json.dumps(listing, separators=(",", ":")))  # out.String: no newline
        return 0
    if profile is None:
        return _missing_profile(name, json_mode)

    if args[:1] == ["status"]:
        for warning in state.get("status_warnings", []):
            print(_event("warning", warning))
        host = profile["host"]
        running = host == "Running"
        status = {
            "Name": name,
            "Host": host,
            "Kubelet": host,
            "APIServer": host,
            "Kubeconfig": "Configured" if running else host,
            "Worker": False,
        }
        sys.stdout.write(json.dumps(status, separators=(",", ":")))
        return 0 if running else 7
    if args[:2] == ["addons", "enable"]:
        addon = args[2]
        profile["addons"][addon] = True
        print(f"* The '{addon}' addon is enabled")
        return 0
    if args[:2] == ["image", "ls"]:
        tags = sorted(profile["images"], reverse=True) if profile["host"] == "Running" else []
        print("\n".join(tags))
        return 0
    if args[:2] == ["image", "build"]:
        tag = _docker_ref(args[args.index("-t") + 1])
        context = os.path.abspath(args[-1])
        dockerfile = args[args.index("-f") + 1] if "-f" in args else "Dockerfile"
        build_args = dict(
            a.removeprefix("--build-opt=build-arg=").split("=", 1)
            for a in args
            if a.startswith("--build-opt=build-arg=")
        )
        # What BuildKit says when the Dockerfile or a COPY source is missing (G: wording), again with exit 0.
        if not os.path.isfile(os.path.join(context, dockerfile)):
            print(
                f"ERROR: failed to solve: failed to read dockerfile: open {dockerfile}: no such file or directory",
                file=sys.stderr,
            )
            return 0
        service = build_args.get("SERVICE", "")
        if not service or not os.path.isdir(os.path.join(context, service)):
            print(f'ERROR: failed to solve: failed to compute cache key: "/{service}": not found', file=sys.stderr)
            return 0
        if tag in {_docker_ref(r) for r in state.get("build_failures", [])}:
            print(
                '#0 building with "default" instance using docker driver\n\n'
                "#9 [build 4/6] RUN /opt/venv/bin/pip install --only-binary=:all: -r /src/requirements.txt\n"
                "#9 1.204 ERROR: No matching distribution found for Flask==3.1.3\n"
                '#9 ERROR: process "/bin/sh -c /opt/venv/bin/pip install --only-binary=:all: -r '
                '/src/requirements.txt" did not complete successfully: exit code: 1\n'
                'ERROR: failed to solve: process "/bin/sh -c /opt/venv/bin/pip install --only-binary=:all: -r '
                '/src/requirements.txt" did not complete successfully: exit code: 1',
                file=sys.stderr,
            )
            return 0  # machine.BuildImage returns nil: the failure is only logged
        profile["images"].append(tag)
        print(f'#0 building with "default" instance using docker driver\n#12 naming to {tag} done', file=sys.stderr)
        return 0
    print(f"standin minikube: unsupported call {args}", file=sys.stderr)
    return 99


def kubectl(args: list[str], state: dict) -> int:
    if args[:1] == ["version"] and "--client" in args:
        print("Client Version: v1.32.4\nKustomize Version: v5.5.0")
        return 0
    print(f"standin kubectl: unsupported call {args}", file=sys.stderr)
    return 99


def main() -> int:
    tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
    with open(os.environ["STANDIN_LOG"], "a") as log:
        log.write(json.dumps([tool, *args]) + "\n")
    state = _load()
    rc = {"docker": docker, "minikube": minikube, "kubectl": kubectl}[tool](args, state)
    _save(state)
    return rc


if __name__ == "__main__":
    sys.exit(main())
