"""Evaluate the Tiltfile here, where Tilt itself cannot run (no Docker engine, no cluster).

Every builtin the Tiltfile may call is defined below with the signature documented at
https://docs.tilt.dev/api.html (parameter names and defaults as Tilt's own API stubs give them), so a
misspelt keyword or an undocumented function fails here as it would in Tilt. Calls that only
configure Tilt (docker_build, k8s_resource, ...) are recorded for the tests to inspect. ``local()``
and ``helm()`` do the real work — a subprocess in the repository, the real helm binary — because
their output is exactly what the Tiltfile deploys.

A Tiltfile is Starlark. It is parsed with Python's ``ast`` (Starlark's syntax is a subset) and
:func:`starlark_violations` rejects the Python-only constructs, so ``exec`` here means the same as
Tilt's interpreter for everything the Tiltfile can contain.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import yaml

HELM = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".tools/bin/helm")

# Python syntax Starlark does not have (https://github.com/bazelbuild/starlark/blob/master/spec.md).
_NOT_STARLARK = {
    ast.JoinedStr: "f-strings",
    ast.While: "while loops",
    ast.Try: "try/except",
    ast.With: "with statements",
    ast.ClassDef: "classes",
    ast.Import: "import (use load())",
    ast.ImportFrom: "import (use load())",
    ast.Raise: "raise (use fail())",
    ast.Global: "global",
    ast.Nonlocal: "nonlocal",
    ast.Yield: "generators",
    ast.Set: "set literals",
    ast.SetComp: "set comprehensions",
    ast.Assert: "assert (use fail())",
    ast.AsyncFunctionDef: "async",
    ast.Await: "async",
}


def starlark_violations(source: str) -> list[str]:
    """Python-only constructs in ``source``, as 'line N: what' strings (empty: valid Starlark syntax)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        for kind, what in _NOT_STARLARK.items():
            if isinstance(node, kind):
                found.append(f"line {node.lineno}: {what}")
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.Is | ast.IsNot) for op in node.ops):
            found.append(f"line {node.lineno}: 'is' comparisons")
        # Valid Starlark, but its repr() quotes strings with " where Python's uses ': the output would differ.
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.search(r"%(\(\w+\))?r", node.value):
            found.append(f"line {node.lineno}: %r (Starlark's repr() quotes differently from Python's)")
    return found


class Blob(str):
    """Tilt's Blob: command output or YAML, a string to the Tiltfile."""


class TiltfileError(Exception):
    """fail() was called: Tilt shows this message as the Tiltfile load error."""


@dataclass
class Call:
    name: str
    args: dict[str, Any]


@dataclass
class TiltRun:
    """One evaluation of a Tiltfile: what it asked Tilt to do."""

    root: str
    cli_args: dict[str, Any]
    kube_context: str
    calls: list[Call] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    watched: list[str] = field(default_factory=list)
    defined_settings: dict[str, str] = field(default_factory=dict)
    deployed: list[dict] = field(default_factory=list)

    def called(self, name: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.name == name]

    def path(self, relative: str) -> str:
        return relative if os.path.isabs(relative) else os.path.join(self.root, relative)


def _recorded(run: TiltRun, func):
    """Wrap a stub so each call is bound to its documented signature (defaults applied) and recorded."""
    signature = inspect.signature(func)

    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)  # TypeError on an undocumented keyword, as in Tilt
        bound.apply_defaults()
        run.calls.append(Call(func.__name__, dict(bound.arguments)))
        return func(*args, **kwargs)

    wrapper.__name__ = func.__name__
    return wrapper


def builtins_for(run: TiltRun) -> dict[str, Any]:
    """The Tiltfile's global namespace: Tilt's builtins, bound to ``run``."""

    # -- config (https://docs.tilt.dev/api.html#modules.config) ------------------------------------
    def define_string(name: str, args: bool = False, usage: str = "") -> None:
        run.defined_settings[name] = usage

    def parse() -> dict[str, Any]:
        unknown = set(run.cli_args) - set(run.defined_settings)
        if unknown:
            raise TiltfileError(f"unknown flags: {sorted(unknown)}")
        return dict(run.cli_args)

    # -- files and commands ---------------------------------------------------------------------
    def local(
        command, quiet: bool = False, command_bat="", echo_off: bool = False, env=None, dir: str = "", stdin=None
    ):
        shell = isinstance(command, str)
        run.commands.append(command if shell else " ".join(command))
        proc = subprocess.run(
            command, shell=shell, cwd=run.path(dir) if dir else run.root, capture_output=True, text=True,
            env={**os.environ, **(env or {})}, input=stdin, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            # Tilt stops loading the Tiltfile and shows the command's output.
            raise TiltfileError(f"command {command!r} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return Blob(proc.stdout)

    def read_yaml(path: str, default=None):
        run.watched.append(path)
        full = run.path(path)
        if not os.path.exists(full) and default is not None:
            return default
        with open(full) as f:
            return yaml.safe_load(f)

    def read_file(file_path: str, default=None) -> Blob:
        run.watched.append(file_path)
        full = run.path(file_path)
        if not os.path.exists(full) and default is not None:
            return Blob(default)
        with open(full) as f:
            return Blob(f.read())

    def decode_yaml_stream(yaml_text) -> list:
        return [d for d in yaml.safe_load_all(str(yaml_text)) if d]

    def watch_file(file_path: str) -> None:
        run.watched.append(file_path)

    def fail(msg) -> None:
        raise TiltfileError(str(msg))

    def blob(contents: str) -> Blob:
        return Blob(contents)

    def encode_yaml(obj) -> Blob:
        return Blob(yaml.safe_dump(obj, sort_keys=False))

    def encode_yaml_stream(objs) -> Blob:
        return Blob(yaml.safe_dump_all(objs, sort_keys=False))

    # -- Kubernetes -----------------------------------------------------------------------------
    def helm(
        pathToChartDir: str,
        name: str = "",
        namespace: str = "",
        values=(),
        set=(),
        kube_version: str = "",
        skip_crds: bool = False,
    ):
        values = [values] if isinstance(values, str) else list(values)
        sets = [set] if isinstance(set, str) else list(set)
        run.watched.append(pathToChartDir)
        run.watched.extend(values)  # Tilt re-runs the Tiltfile when the chart or a values file changes
        cmd = [HELM, "template", name or "chart", run.path(pathToChartDir)]
        if namespace:
            cmd += ["--namespace", namespace]
        for v in values:
            cmd += ["--values", run.path(v)]
        for s in sets:
            cmd += ["--set", s]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise TiltfileError(f"helm template failed: {proc.stderr}")
        # Tilt drops the chart's test hooks (a "# Source: <chart>/templates/tests/..." document) from what it applies.
        docs = [d for d in proc.stdout.split("---\n") if not re.search(r"^# Source: .*/tests/", d, re.MULTILINE)]
        return Blob("---\n".join(docs))

    def k8s_yaml(yaml, allow_duplicates: bool = False) -> None:
        texts = yaml if isinstance(yaml, list) else [yaml]
        for text in texts:
            if not isinstance(text, Blob):  # a path: Tilt reads and watches it
                run.watched.append(text)
                with open(run.path(text)) as f:
                    text = f.read()
            run.deployed.extend(decode_yaml_stream(text))

    def k8s_resource(workload: str = "", new_name: str = "", port_forwards=(), extra_pod_selectors=(),
                     trigger_mode=None, resource_deps=(), objects=(), auto_init: bool = True,
                     pod_readiness: str = "", links=(), labels=(), discovery_strategy: str = "") -> None:  # fmt: skip
        pass

    def port_forward(local_port: int, container_port: int | None = None, name: str | None = None,
                     link_path: str | None = None, host: str | None = None):  # fmt: skip
        return SimpleNamespace(kind="port_forward", local_port=local_port, container_port=container_port, name=name,
                               link_path=link_path, host=host)  # fmt: skip

    def link(url: str, name: str | None = None):
        return SimpleNamespace(kind="link", url=url, name=name)

    def allow_k8s_contexts(contexts) -> None:
        pass

    def k8s_context() -> str:
        return run.kube_context

    # -- images and live update -----------------------------------------------------------------
    def docker_build(ref: str, context: str, build_args=None, dockerfile: str = "Dockerfile", dockerfile_contents="",
                     live_update=(), match_in_env_vars: bool = False, ignore=(), only=(), entrypoint=(),
                     target: str = "", ssh="", network: str = "", secret="", extra_tag="", container_args=None,
                     cache_from=(), pull: bool = False, platform: str = "", extra_hosts=()) -> None:  # fmt: skip
        pass

    def sync(local_path: str, remote_path: str):
        return SimpleNamespace(kind="sync", local_path=local_path, remote_path=remote_path)

    def run_step(cmd, trigger=(), echo_off: bool = False):
        return SimpleNamespace(kind="run", cmd=cmd, trigger=trigger)

    def fall_back_on(files):
        return SimpleNamespace(kind="fall_back_on", files=[files] if isinstance(files, str) else list(files))

    run_step.__name__ = "run"
    recorded = [docker_build, helm, local, k8s_yaml, k8s_resource, allow_k8s_contexts, watch_file]
    namespace = {f.__name__: _recorded(run, f) for f in recorded}
    namespace.update(
        {
            f.__name__: f
            for f in (
                read_yaml,
                read_file,
                decode_yaml_stream,
                encode_yaml,
                encode_yaml_stream,
                fail,
                blob,
                k8s_context,
                port_forward,
                link,
                sync,
                fall_back_on,
            )
        }
    )
    namespace["run"] = run_step
    namespace["config"] = SimpleNamespace(define_string=define_string, parse=parse, main_dir=run.root)
    return namespace


def evaluate(
    root: str, kube_context: str, cli_args: dict[str, Any] | None = None, filename: str = "Tiltfile"
) -> TiltRun:
    """Load the Tiltfile in ``root`` as ``tilt up -- <cli_args>`` would against ``kube_context``; return what it did."""
    run = TiltRun(root=root, cli_args=dict(cli_args or {}), kube_context=kube_context)
    path = os.path.join(root, filename)
    with open(path) as f:
        source = f.read()
    namespace = builtins_for(run)
    namespace["__file__"] = path
    try:
        exec(compile(source, path, "exec"), namespace)  # noqa: S102 - the project's own Tiltfile
    except TiltfileError as failure:
        failure.run = run  # what the Tiltfile had done before it stopped
        raise
    return run
