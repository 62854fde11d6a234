"""The services' declared settings, as the tests walk them: read from the declarations themselves
(each service package's SETTINGS, found by scripts/chart-settings.py), never from a list kept here."""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from dataclasses import dataclass
from types import ModuleType

from tests.support.chart import REPO_ROOT

# For a setting without a maximum: the chart has none either, and the service must take a huge value.
HUGE = 10**9


@functools.cache
def generator() -> ModuleType:
    """scripts/chart-settings.py as a module (its name is not an identifier)."""
    path = os.path.join(REPO_ROOT, "scripts", "chart-settings.py")
    spec = importlib.util.spec_from_file_location("chart_settings", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # before it runs: its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Setting:
    service: str
    block: type  # an atlas_common.config.SettingsBlock
    declared: object  # its atlas_common.config.Declared

    @property
    def key(self) -> str:
        return f"{self.service}.{self.block.chart_block}.{self.declared.chart}"

    @property
    def id(self) -> str:
        return self.key

    def sibling(self, name: str):
        return next(d for d in self.block.declared() if d.name == name)

    def sibling_key(self, name: str) -> str:
        return f"{self.service}.{self.block.chart_block}.{self.sibling(name).chart}"

    @property
    def step(self) -> float:
        """One step past a bound: 1 for an integer, a small step for a number."""
        return 1 if self.declared.kind == "integer" else 0.01

    @property
    def bounds(self) -> tuple[float, float]:
        d = self.declared
        return d.minimum, d.maximum if d.maximum is not None else HUGE


def services():
    return generator().services()


def chart_settings() -> list[Setting]:
    """Every chart value of every service, from the declarations."""
    return [
        Setting(service.name, block, d)
        for service in services()
        for block in service.blocks
        for d in block.declared()
        if d.chart is not None
    ]


def numeric_settings() -> list[Setting]:
    return [s for s in chart_settings() if s.declared.kind in ("integer", "number")]


# -- deploying one service through the chart -------------------------------------------------------


def _signing_key() -> str:
    """A valid ATLAS_AUTH_SIGNING_KEY_FILE: one EC P-256 private key, PEM (what `python -m auth generate-key` makes)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


# What a valid file holds, per variable a service's secretFiles name (the one piece of knowledge a test needs
# beyond the chart's values to run a service that reads files from Secrets).
SECRET_FILE_CONTENT = {"ATLAS_AUTH_SIGNING_KEY_FILE": _signing_key}


@functools.cache
def _chart_defaults() -> dict:
    import yaml

    with open(os.path.join(REPO_ROOT, "charts", "atlas", "values.yaml")) as f:
        return yaml.safe_load(f)


def deploy_values(service: str) -> dict:
    """The values that deploy ``service`` (enabled, its secretFiles named) in a `--set`-style mapping."""
    values: dict = {f"{service}.enabled": True}
    files = _chart_defaults()[service]["secretFiles"]
    if files:
        values[f"{service}.secretFiles"] = [
            {**f, "secretName": f"test-{service}-file-{i}"} for i, f in enumerate(files)
        ]
    return values


@functools.cache
def secret_files(service: str) -> dict[str, dict[str, str]]:
    """The Secrets deploy_values names, with valid content: {secret name: {key: content}}."""
    files = _chart_defaults()[service]["secretFiles"]
    return {f"test-{service}-file-{i}": {f["key"]: SECRET_FILE_CONTENT[f["env"]]()} for i, f in enumerate(files)}
