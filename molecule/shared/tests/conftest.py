"""The verify tests every scenario shares (Molecule runs them with pytest-testinfra).

The scenario's name is its profile (MOLECULE_SCENARIO_NAME). Tests marked ``render`` check the
rendered release in build/; tests marked ``cluster`` check the live release. The mode comes from
atlas_mode.py, the same decision the scenario's playbooks printed; a test of the other mode is
skipped with the reason shown in the report, never passed silently.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1]
REPO_ROOT = SHARED.parents[1]
# The repo root for tests.support (PostgreSQL, chart helpers); molecule/shared for atlas_mode.
for path in (str(REPO_ROOT), str(SHARED)):
    if path not in sys.path:
        sys.path.insert(0, path)

import atlas_mode  # noqa: E402
from atlas_profiles import PROFILES, Profile  # noqa: E402

_MODE_KEY = pytest.StashKey[atlas_mode.Mode]()
_PROFILE_KEY = pytest.StashKey[Profile]()

# The inventory scenario.yml passes to the playbooks; render.yml writes build/<env>/<profile>/.
INVENTORY_ENV = "test"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "render: checks the rendered release (render mode only)")
    config.addinivalue_line("markers", "cluster: checks the live release on a cluster (cluster mode only)")
    config.stash[_PROFILE_KEY] = _scenario_profile()  # an unknown scenario is an error before any test runs
    config.stash[_MODE_KEY] = _mode()


def _scenario_profile() -> Profile:
    name = os.environ.get("MOLECULE_SCENARIO_NAME", "")
    if name not in PROFILES:
        raise pytest.UsageError(
            f"MOLECULE_SCENARIO_NAME must name a profile ({', '.join(PROFILES)}), got {name!r}: run these tests "
            "through Molecule (molecule verify -s <profile>)"
        )
    return PROFILES[name]


def _mode() -> atlas_mode.Mode:
    try:
        return atlas_mode.detect()
    except atlas_mode.ModeError as exc:
        raise pytest.UsageError(str(exc)) from exc


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mode = config.stash[_MODE_KEY]
    skip_cluster = pytest.mark.skip(reason=f"render mode: no cluster ({mode.reason})")
    skip_render = pytest.mark.skip(reason="cluster mode: the live release is verified instead of rendered files")
    for item in items:
        if mode.mode == atlas_mode.RENDER and item.get_closest_marker("cluster"):
            item.add_marker(skip_cluster)
        if mode.mode == atlas_mode.CLUSTER and item.get_closest_marker("render"):
            item.add_marker(skip_render)


@pytest.fixture(scope="session")
def mode(pytestconfig: pytest.Config) -> atlas_mode.Mode:
    return pytestconfig.stash[_MODE_KEY]


@pytest.fixture(scope="session")
def profile(pytestconfig: pytest.Config) -> Profile:
    return pytestconfig.stash[_PROFILE_KEY]


@pytest.fixture(scope="session")
def build_dir(profile: Profile) -> Path:
    return REPO_ROOT / "build" / INVENTORY_ENV / profile.name


def pytest_report_header(config: pytest.Config) -> list[str]:
    mode = config.stash[_MODE_KEY]
    return [f"atlas scenario {config.stash[_PROFILE_KEY].name}: {mode.mode} mode, {mode.reason}"]
