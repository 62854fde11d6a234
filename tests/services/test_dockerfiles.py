"""The service images cannot be built here (no Docker engine); their Dockerfiles are checked as text
against what docs/interfaces.md and the issue require."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.conftest import REPO_ROOT

CONTEXT = os.path.join(REPO_ROOT, "services")


def instructions(service: str) -> list[tuple[str, str]]:
    """services/Dockerfile's instructions as `docker build --build-arg SERVICE=<service>` reads them."""
    with open(os.path.join(CONTEXT, "Dockerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read()).replace("${SERVICE}", service)  # join continuation lines
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


@pytest.mark.parametrize("service", ["users", "projects", "auth"])
def test_dockerfile_follows_the_interface(service):
    steps = instructions(service)
    froms = [i for i, (op, _) in enumerate(steps) if op == "FROM"]
    assert len(froms) >= 2, "multi-stage"
    final = steps[froms[-1] :]
    args = {arg.split("=", 1)[0]: arg.split("=", 1)[1] for op, arg in steps if op == "ARG" and "=" in arg}
    base = final[0][1].replace("${PYTHON_IMAGE}", args.get("PYTHON_IMAGE", ""))
    assert re.match(r"^python:3\.11-slim", base), base

    ops = [op for op, _ in final]
    assert "HEALTHCHECK" not in [op for op, _ in steps]
    assert ("USER", "10001:10001") in final
    assert ops.index("USER") > max(i for i, op in enumerate(ops) if op in ("COPY", "RUN"))  # nothing runs as root after
    # The final stage copies only the built virtualenv; no apt-get, no compilers, no source tree.
    assert [arg for op, arg in final if op == "COPY"] == ["--from=build /opt/venv /opt/venv"]
    assert not [arg for op, arg in final if op == "RUN"]
    assert ("EXPOSE", "8080") in final
    # The service is baked in as ATLAS_SERVICE, which the default command serves.
    env = " ".join(arg for op, arg in final if op == "ENV")
    assert f"ATLAS_SERVICE={service}" in env
    cmd = json.loads(next(arg for op, arg in final if op == "CMD"))
    assert cmd[-1] == 'exec python -m "$ATLAS_SERVICE" serve'

    # Everything copied exists in the build context (services/).
    for op, arg in steps:
        if op == "COPY" and not arg.startswith("--from"):
            source = arg.split()[0]
            assert os.path.exists(os.path.join(CONTEXT, source)), source


def test_one_dockerfile_for_every_service():
    """A new service is a folder and a build argument, not a new Dockerfile."""
    found = sorted(
        os.path.relpath(os.path.join(d, f), CONTEXT) for d, _, fs in os.walk(CONTEXT) for f in fs if f == "Dockerfile"
    )
    assert found == ["Dockerfile"]


def test_dockerignore_keeps_caches_out():
    with open(os.path.join(CONTEXT, ".dockerignore")) as f:
        patterns = f.read().split()
    assert {"**/__pycache__", "**/*.egg-info"} <= set(patterns)
