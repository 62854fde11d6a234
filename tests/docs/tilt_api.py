"""Load the Tiltfile here, where Tilt itself cannot run (no Docker engine, no cluster).

The Tiltfile is parsed and run by a real Starlark interpreter (starlark-rust, through starlark-pyo3)
with the dialect Tilt uses: top-level statements, def and lambda, no f-strings. So syntax, scoping,
string formatting and fail() behave as in Tilt. What the interpreter does not have are Tilt's
builtins: each one the Tiltfile may call is defined below with the parameters documented at
https://docs.tilt.dev/api.html (names and defaults from Tilt's own API stubs), so a misspelt keyword
or an undocumented function fails here as it would in Tilt. Calls that only configure Tilt
(docker_build, k8s_resource, ...) are recorded for the tests. ``local()`` runs the real command in
the repository, because its output is exactly what the Tiltfile deploys.

Values cross between Starlark and Python as JSON, so Tilt's opaque objects (port_forward(), link(),
sync(), ...) are plain dicts here, with a "kind" key.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any

import starlark as sl
import yaml


def tilt_dialect() -> sl.Dialect:
    dialect = sl.Dialect.standard()
    dialect.enable_top_level_stmt = True  # if/for at top level, as every Tiltfile has
    dialect.enable_def = True
    dialect.enable_lambda = True
    dialect.enable_load = True
    dialect.enable_f_strings = False  # Tilt's Starlark (starlark-go) has none
    return dialect


class TiltfileError(Exception):
    """The Tiltfile stopped (fail(), a failing local(), an error): Tilt shows this as the load error."""

    run: TiltRun


@dataclass
class Call:
    name: str
    args: dict[str, Any]


@dataclass
class TiltRun:
    """One load of a Tiltfile: what it asked Tilt to do."""

    root: str
    cli_args: dict[str, Any]
    kube_context: str
    calls: list[Call] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    watched: list[str] = field(default_factory=list)
    defined_settings: dict[str, str] = field(default_factory=dict)
    deployed: list[dict] = field(default_factory=list)
    failure: TiltfileError | None = None

    def called(self, name: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.name == name]

    def path(self, relative: str) -> str:
        return relative if os.path.isabs(relative) else os.path.join(self.root, relative)

    def stop(self, message: str) -> TiltfileError:
        self.failure = TiltfileError(message)
        return self.failure


def _recorded(run: TiltRun, name: str, func):
    """Bind each call to the documented signature (TypeError on an unknown keyword, as in Tilt) and record it."""
    signature = inspect.signature(func)

    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        run.calls.append(Call(name, dict(bound.arguments)))
        return func(*args, **kwargs)

    return wrapper


def builtins_for(run: TiltRun) -> dict[str, Any]:
    """Tilt's builtins used by Atlas's Tiltfile, bound to ``run``. Names starting with _config_ form `config`."""

    # -- config (https://docs.tilt.dev/api.html#modules.config) ------------------------------------
    def _config_define_string(name: str, args: bool = False, usage: str = "") -> None:
        run.defined_settings[name] = usage

    def _config_parse() -> dict[str, Any]:
        unknown = set(run.cli_args) - set(run.defined_settings)
        if unknown:
            raise run.stop(f"unknown flags: {sorted(unknown)}")
        return dict(run.cli_args)

    # -- files and commands ---------------------------------------------------------------------
    def local(command, quiet=False, command_bat="", echo_off=False, env=None, dir="", stdin=None):
        shell = isinstance(command, str)
        run.commands.append(command if shell else " ".join(command))
        proc = subprocess.run(
            command, shell=shell, cwd=run.path(dir) if dir else run.root, capture_output=True, text=True,
            env={**os.environ, **(env or {})}, input=stdin, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            # Tilt stops loading and shows the command's output.
            raise run.stop(f"command {command!r} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def read_file(file_path: str, default=None) -> str:
        run.watched.append(file_path)
        full = run.path(file_path)
        if not os.path.exists(full) and default is not None:
            return default
        with open(full) as f:
            return f.read()

    def read_yaml(path: str, default=None):
        run.watched.append(path)
        full = run.path(path)
        if not os.path.exists(full) and default is not None:
            return default
        with open(full) as f:
            return yaml.safe_load(f)

    def decode_yaml_stream(yaml_text) -> list:
        return [d for d in yaml.safe_load_all(yaml_text) if d]

    def encode_yaml_stream(objs) -> str:
        return yaml.safe_dump_all(objs, sort_keys=False)

    def watch_file(file_path: str) -> None:
        run.watched.append(file_path)

    # -- Kubernetes -----------------------------------------------------------------------------
    def k8s_context() -> str:
        return run.kube_context

    def k8s_yaml(yaml_or_paths, allow_duplicates: bool = False) -> None:
        texts = yaml_or_paths if isinstance(yaml_or_paths, list) else [yaml_or_paths]
        for text in texts:
            if "\n" not in text:  # a path (a Blob of YAML has lines): Tilt reads and watches it
                run.watched.append(text)
                with open(run.path(text)) as f:
                    text = f.read()
            run.deployed.extend(decode_yaml_stream(text))

    def k8s_resource(workload="", new_name="", port_forwards=(), extra_pod_selectors=(), trigger_mode=None,
                     resource_deps=(), objects=(), auto_init=True, pod_readiness="", links=(), labels=(),
                     discovery_strategy="") -> None:  # fmt: skip
        pass

    def port_forward(local_port: int, container_port=None, name=None, link_path=None, host=None) -> dict:
        return dict(kind="port_forward", local_port=local_port, container_port=container_port, name=name,
                    link_path=link_path, host=host)  # fmt: skip

    def link(url: str, name=None) -> dict:
        return dict(kind="link", url=url, name=name)

    def allow_k8s_contexts(contexts) -> None:
        pass

    # -- images and live update -----------------------------------------------------------------
    def docker_build(ref, context, build_args=None, dockerfile="Dockerfile", dockerfile_contents="", live_update=(),
                     match_in_env_vars=False, ignore=(), only=(), entrypoint=(), target="", ssh="", network="",
                     secret="", extra_tag="", container_args=None, cache_from=(), pull=False, platform="",
                     extra_hosts=()) -> None:  # fmt: skip
        pass

    def sync(local_path: str, remote_path: str) -> dict:
        return dict(kind="sync", local_path=local_path, remote_path=remote_path)

    def run_step(cmd, trigger=(), echo_off=False) -> dict:
        return dict(kind="run", cmd=cmd, trigger=trigger)

    def fall_back_on(files) -> dict:
        return dict(kind="fall_back_on", files=[files] if isinstance(files, str) else list(files))

    scope = dict(locals())
    recorded = {"docker_build", "k8s_resource", "k8s_yaml", "local", "allow_k8s_contexts", "watch_file"}
    functions = {"run" if name == "run_step" else name: f for name, f in scope.items() if inspect.isfunction(f)}
    return {name: _recorded(run, name, f) if name in recorded else f for name, f in functions.items()}


_CONFIG_MODULE = "config = struct({})"


def _as_tilt_error(run: TiltRun, error: sl.StarlarkError) -> TiltfileError:
    """The message Tilt would show: fail()'s or the failing builtin's text, else the interpreter's report."""
    if run.failure is not None:
        return run.failure
    text = str(error)
    failed = re.search(r"^error: fail: (.*?)\n *--> ", text, re.MULTILINE | re.DOTALL)
    return TiltfileError(failed.group(1) if failed else text)


def evaluate(
    root: str, kube_context: str, cli_args: dict[str, Any] | None = None, filename: str = "Tiltfile"
) -> TiltRun:
    """Load the Tiltfile in ``root`` as ``tilt up -- <cli_args>`` would against ``kube_context``; return what it did."""
    run = TiltRun(root=root, cli_args=dict(cli_args or {}), kube_context=kube_context)
    module = sl.Module()
    config_members = []
    for name, func in builtins_for(run).items():
        module.add_callable(name, func)
        if name.startswith("_config_"):
            config_members.append(f"{name.removeprefix('_config_')} = {name}")
    dialect = tilt_dialect()
    globals_ = sl.Globals.extended_by([sl.LibraryExtension.StructType, sl.LibraryExtension.Print])
    sl.eval(
        module, sl.parse("<tilt builtins>", _CONFIG_MODULE.format(", ".join(config_members)), dialect=dialect), globals_
    )
    with open(os.path.join(root, filename)) as f:
        source = f.read()
    try:
        sl.eval(module, sl.parse(filename, source, dialect=dialect), globals_)
    except sl.StarlarkError as error:
        failure = _as_tilt_error(run, error)
        failure.run = run  # what the Tiltfile had done before it stopped
        raise failure from None
    return run


def lint(root: str, filename: str = "Tiltfile") -> list[str]:
    """starlark-rust's lints for the Tiltfile (unused or reassigned names, unreachable code, ...)."""
    with open(os.path.join(root, filename)) as f:
        module = sl.parse(filename, f.read(), dialect=tilt_dialect())
    return [str(finding) for finding in module.lint()]
