"""Every manifest the chart renders is valid against the Kubernetes API schemas, offline.

kubernetes-validate bundles the OpenAPI schemas of each release; strict mode also refuses unknown
fields, which catches a misspelt or misplaced key that the API server would silently drop.
"""

from __future__ import annotations

import copy
import glob
import os

import kubernetes_validate
import pytest

from tests.chart.matrix import COMBOS
from tests.support.chart import render

KUBERNETES_VERSION = "1.35.0"
VALUES_FILES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "values", "*.yaml")))

CASES = [pytest.param({}, [], id="defaults")]
# Combinations with both services off render nothing (test_matrix asserts that).
CASES += [pytest.param(combo.values(), [], id=combo.id) for combo in COMBOS if combo.enabled]
CASES += [pytest.param({}, [path], id=os.path.basename(path)) for path in VALUES_FILES]


def validation_errors(manifests: list[dict]) -> list[str]:
    errors = []
    for doc in manifests:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {err.message} at {list(err.path)}")
    return errors


@pytest.mark.parametrize(("values", "values_files"), CASES)
def test_rendered_manifests_validate(values: dict, values_files: list[str]) -> None:
    manifests = render(values, values_files)
    assert manifests
    assert validation_errors(manifests) == []


def test_validator_refuses_a_misplaced_field() -> None:
    """The check above can fail: a field in the wrong place is refused in strict mode."""
    deployment = copy.deepcopy(next(d for d in render() if d["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessPobe"] = {}
    (error,) = validation_errors([deployment])
    assert "readinessPobe" in error
