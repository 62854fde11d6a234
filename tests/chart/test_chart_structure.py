"""The chart's own shape: a valid schema, and one set of templates shared by both services."""

from __future__ import annotations

import json
import os
import re

import jsonschema
import yaml

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


def _services() -> list[str]:
    """The chart's services, as atlas.services finds them: the value blocks in the service shape."""
    with open(os.path.join(CHART_DIR, "values.yaml")) as f:
        values = yaml.safe_load(f)
    return sorted(k for k, v in values.items() if isinstance(v, dict) and {"image", "config", "postgresql"} <= set(v))


def test_templates_are_shared_not_copied_per_service() -> None:
    """A new service is a block of values: no template file is named after a service, and no template tests for
    one by name (the wiring between services is data: calls, entry.paths, authentication.provider)."""
    services = _services()
    assert {"users", "projects", "auth"} <= set(services)
    names = [n for _, _, files in os.walk(TEMPLATES) for n in files]
    assert not [n for n in names if any(service in n for service in services)]
    for path in [os.path.join(root, n) for root, _, files in os.walk(TEMPLATES) for n in files]:
        if os.path.basename(path) == "_settings.tpl":
            continue  # generated from the services' own declarations (make chart-docs): no hand edit per service
        with open(path) as f:
            text = f.read()
        named = [service for service in services if re.search(rf'"{service}"|\.Values\.{service}\b', text)]
        assert not named, f"{os.path.relpath(path, CHART_DIR)} names a service: {named}"
    per_service = [n for n in os.listdir(TEMPLATES) if n.startswith(("service-", "postgresql-"))]
    assert len(per_service) >= 10
    for name in per_service:
        with open(os.path.join(TEMPLATES, name)) as f:
            assert 'include "atlas.enabledServices"' in f.read(), f"{name} does not loop over the services"
