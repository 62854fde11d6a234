"""Decide, once and out loud, whether the Molecule scenarios run in cluster mode or render mode.

Used three ways: by the scenarios' playbooks (``python atlas_mode.py --json``), by the verify tests
(``detect()``), and by ``make molecule-cluster`` (``--require cluster``: exit 2 with a one-line reason).

Rules, first match wins:
  MOLECULE_MODE=render                 -> render mode (asked for)
  ATLAS_KUBECONFIG=<file> [+ ATLAS_KUBE_CONTEXT]
                                       -> cluster mode on that cluster, if its API server answers;
                                          an unusable one is an error, never a silent fallback
  `docker info` answers                -> cluster mode on a dedicated Minikube profile
  otherwise                            -> render mode, unless MOLECULE_MODE=cluster: then an error
The user's own kube context is never picked up implicitly: a test run must not touch a dev cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass

RENDER = "render"
CLUSTER = "cluster"
# Minikube profile the four scenarios share in cluster mode (never the user's default `minikube`).
DEFAULT_MINIKUBE_PROFILE = "atlas-molecule"


class ModeError(Exception):
    """The environment asks for something that cannot be had; the message names the variable."""


@dataclass(frozen=True)
class Mode:
    mode: str  # render | cluster
    reason: str
    cluster: str = ""  # cluster mode only: minikube | kubeconfig
    kubeconfig: str = ""
    context: str = ""
    minikube_profile: str = ""

    def line(self) -> str:
        return f"molecule mode: {self.mode} ({self.reason})"


def _docker_answers(path: str | None) -> tuple[bool, str]:
    docker = shutil.which("docker", path=path)
    if docker is None:
        return False, "docker is not installed"
    try:
        proc = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return False, "docker info timed out after 20s"
    if proc.returncode != 0:
        first = next((ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()), "no output")
        return False, f"docker info failed: {first}"
    return True, f"docker info answered (engine {proc.stdout.strip() or 'unknown'})"


def _kubeconfig_answers(path: str, context: str) -> tuple[str, str]:
    """Return (context, server version), or raise ModeError saying why the kubeconfig is unusable.

    The context is named explicitly (the file's current-context when none is given): the playbooks
    need a context name for an existing cluster.
    """
    if not os.path.isfile(path):
        raise ModeError(f"ATLAS_KUBECONFIG={path}: no such file")
    # Imported here so `make molecule-cluster` without a cluster stays fast and dependency-light.
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if not context:
            context = config.list_kube_config_contexts(config_file=path)[1]["name"]
        api = config.new_client_from_config(config_file=path, context=context)
    except (ConfigException, TypeError, KeyError) as exc:
        raise ModeError(f"ATLAS_KUBECONFIG={path} (ATLAS_KUBE_CONTEXT={context or '<current>'}): {exc}") from exc
    try:
        info = client.VersionApi(api).get_code(_request_timeout=10)
    except Exception as exc:  # any transport or API failure means "no usable cluster"
        why = f"the API server {api.configuration.host} does not answer ({exc.__class__.__name__})"
        raise ModeError(f"ATLAS_KUBECONFIG={path}: {why}") from exc
    return context, info.git_version


def detect(env: dict[str, str] | None = None) -> Mode:
    env = dict(os.environ if env is None else env)
    forced = env.get("MOLECULE_MODE", "").strip().lower()
    if forced not in ("", RENDER, CLUSTER):
        raise ModeError(f"MOLECULE_MODE must be 'render', 'cluster' or unset, got {env['MOLECULE_MODE']!r}")
    if forced == RENDER:
        return Mode(RENDER, "MOLECULE_MODE=render")

    kubeconfig = env.get("ATLAS_KUBECONFIG", "").strip()
    context = env.get("ATLAS_KUBE_CONTEXT", "").strip()
    if context and not kubeconfig:
        raise ModeError("ATLAS_KUBE_CONTEXT is set but ATLAS_KUBECONFIG is not: name the kubeconfig file too")
    if kubeconfig:
        kubeconfig = os.path.abspath(kubeconfig)
        context, version = _kubeconfig_answers(kubeconfig, context)
        return Mode(
            CLUSTER,
            f"ATLAS_KUBECONFIG answers (context {context}, Kubernetes {version})",
            cluster="kubeconfig",
            kubeconfig=kubeconfig,
            context=context,
        )

    docker_ok, docker_why = _docker_answers(env.get("PATH"))
    if docker_ok:
        profile = env.get("ATLAS_MOLECULE_MINIKUBE_PROFILE", "").strip() or DEFAULT_MINIKUBE_PROFILE
        return Mode(CLUSTER, f"{docker_why}; Minikube profile {profile}", cluster="minikube", minikube_profile=profile)

    nothing = f"{docker_why}; ATLAS_KUBECONFIG is not set"
    if forced == CLUSTER:
        raise ModeError(f"MOLECULE_MODE=cluster but no cluster can be had: {nothing}")
    return Mode(RENDER, nothing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the decision as JSON (for playbooks)")
    parser.add_argument("--require", choices=[RENDER, CLUSTER], help="exit 2 unless this mode results")
    args = parser.parse_args(argv)
    try:
        mode = detect()
    except ModeError as exc:
        print(f"molecule mode: error: {exc}", file=sys.stderr)
        return 2
    if args.require and mode.mode != args.require:
        print(f"molecule mode: {args.require} required, but {mode.line()}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(mode)) if args.json else mode.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
