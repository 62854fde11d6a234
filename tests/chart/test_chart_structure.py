"""The chart's own shape: a valid schema, and one set of templates shared by both services."""

from __future__ import annotations

import json
import os

import jsonschema

from tests.support.chart import CHART_DIR

TEMPLATES = os.path.join(CHART_DIR, "templates")


def test_values_schema_is_a_valid_draft7_schema() -> None:
    with open(os.path.join(CHART_DIR, "values.schema.json")) as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    # Unknown keys are refused at the top, service and database levels.
    assert schema["additionalProperties"] is False
    for level in ("atlasService", "postgresql", "externalDatabase", "auth", "persistence"):
        definition = schema["definitions"].get(level) or schema["definitions"]["postgresql"]["properties"][level]
        assert definition["additionalProperties"] is False, level


def test_templates_are_shared_not_copied_per_service() -> None:
    names = [n for _, _, files in os.walk(TEMPLATES) for n in files]
    assert not [n for n in names if "users" in n or "projects" in n]
    per_service = [n for n in os.listdir(TEMPLATES) if n.startswith(("service-", "postgresql-"))]
    assert len(per_service) >= 10
    for name in per_service:
        with open(os.path.join(TEMPLATES, name)) as f:
            assert 'include "atlas.enabledServices"' in f.read(), f"{name} does not loop over the services"
