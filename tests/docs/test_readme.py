"""README's instructions match what the project does (the parts a test can read)."""

from __future__ import annotations

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _readme() -> str:
    with open(os.path.join(REPO_ROOT, "README.md")) as fh:
        return fh.read()


def test_reaching_the_ingress_depends_on_where_docker_runs():
    text = _readme()
    assert "**Linux, docker driver**" in text and "minikube ip -p atlas-dev" in text
    # Docker Desktop: minikube ip is not reachable from the host; the tunnel and 127.0.0.1 are.
    assert "minikube tunnel -p atlas-dev" in text and '"127.0.0.1 atlas.local"' in text


def test_no_chart_version_bump_rule():
    """The values carry the chart's digest (roles/values), so a template change upgrades by itself."""
    text = _readme()
    assert "Bump `version`" not in text and "chartDigest" in text


def test_molecule_command_is_shown_with_the_venv_it_needs():
    text = _readme()
    assert ". .venv/bin/activate" in text and "molecule test -s users-only" in text
