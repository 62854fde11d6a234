"""Bad values are refused at render time with a message naming the key.

values.schema.json refuses wrong types, unknown keys, out-of-range numbers, bad enums and missing keys;
the chart's own checks (templates/_validate.tpl) refuse contradictions between keys.
"""

from __future__ import annotations

import pytest

from tests.support.chart import render_error

SCHEMA_CASES = {
    "typo-replicas": ({"users.replicas": 2}, "users: Additional property replicas is not allowed"),
    "unknown-db-key": (
        {"projects.postgresql.persistance": {"enabled": False}},
        "projects.postgresql: Additional property persistance is not allowed",
    ),
    "unknown-auth-key": (
        {"users.postgresql.auth.user": "x"},
        "users.postgresql.auth: Additional property user is not allowed",
    ),
    "unknown-external-key": (
        {"users.externalDatabase.hostname": "db"},
        "users.externalDatabase: Additional property hostname is not allowed",
    ),
    "unknown-top-level": ({"ingres": {"enabled": False}}, "Additional property ingres is not allowed"),
    "negative-replicas": ({"users.replicaCount": -1}, "users.replicaCount: Must be greater than or equal to 0"),
    "replicas-wrong-type": ({"projects.replicaCount": "two"}, "projects.replicaCount: Invalid type. Expected: integer"),
    "enabled-wrong-type": ({"users.enabled": "yes"}, "users.enabled: Invalid type. Expected: boolean, given: string"),
    "bad-log-level": ({"users.config.logLevel": "TRACE"}, "users.config.logLevel must be one of the following"),
    "bad-pull-policy": (
        {"projects.image.pullPolicy": "Sometimes"},
        "projects.image.pullPolicy must be one of the following",
    ),
    "bad-service-type": ({"users.service.type": "ExternalName"}, "users.service.type must be one of the following"),
    "port-out-of-range": (
        {"users.externalDatabase.port": 70000},
        "users.externalDatabase.port: Must be less than or equal to 65535",
    ),
    "pool-size-zero": ({"projects.config.poolSize": 0}, "projects.config.poolSize: Must be greater than or equal to 1"),
    "cpu-target-above-100": (
        {"users.autoscaling.targetCPUUtilizationPercentage": 150},
        "users.autoscaling.targetCPUUtilizationPercentage: Must be less than or equal to 100",
    ),
    "bad-access-mode": (
        {"users.postgresql.persistence.accessModes": ["ReadWriteSometimes"]},
        "users.postgresql.persistence.accessModes.0 must be one of the following",
    ),
    "empty-access-modes": (
        {"users.postgresql.persistence.accessModes": []},
        "users.postgresql.persistence.accessModes: Array must have at least 1 items",
    ),
    "bad-quantity": (
        {"users.postgresql.persistence.size": "lots"},
        "users.postgresql.persistence.size: Does not match pattern",
    ),
    "missing-required-key": ({"users.image.repository": None}, "users.image: repository is required"),
    "missing-resources-limits": ({"projects.resources.limits": None}, "projects.resources: limits is required"),
    "users-service-on-users": (
        {"users.usersService": {"timeout": 1, "retries": 1}},
        "users.usersService: False always fails",
    ),
    "timeout-zero": (
        {"projects.usersService.timeout": 0},
        "projects.usersService.timeout: Must be greater than or equal to 0.05",
    ),
    "bad-database-name": (
        {"users.postgresql.auth.database": "users; drop"},
        "users.postgresql.auth.database: Does not match pattern",
    ),
    "bad-ingress-namespace": (
        {"networkPolicy.ingressControllerNamespace": "Ingress_Nginx"},
        "networkPolicy.ingressControllerNamespace: Does not match pattern",
    ),
}

TEMPLATE_CASES = {
    "external-db-without-host": (
        {"users.postgresql.enabled": False, "users.externalDatabase.existingSecret": "s"},
        "users.externalDatabase.host is required when users.postgresql.enabled is false",
    ),
    "external-db-without-secret": (
        {"projects.postgresql.enabled": False, "projects.externalDatabase.host": "db"},
        "projects.externalDatabase.existingSecret is required when projects.postgresql.enabled is false",
    ),
    "tls-without-secret": (
        {"ingress.tls.enabled": True},
        "ingress.tls.secretName is required when ingress.tls.enabled is true",
    ),
    "min-above-max-replicas": (
        {"users.autoscaling.enabled": True, "users.autoscaling.minReplicas": 6, "users.autoscaling.maxReplicas": 5},
        "users.autoscaling.minReplicas (6) must not exceed users.autoscaling.maxReplicas (5)",
    ),
    "grace-period-too-short": (
        {"projects.terminationGracePeriodSeconds": 20},
        "projects.terminationGracePeriodSeconds (20) must exceed "
        "projects.preStopSleepSeconds + projects.config.gracefulTimeout (25)",
    ),
}


def test_enough_bad_values_cases() -> None:
    assert len(SCHEMA_CASES) >= 12


@pytest.mark.parametrize(("values", "message"), SCHEMA_CASES.values(), ids=SCHEMA_CASES.keys())
def test_schema_refuses(values: dict, message: str) -> None:
    error = render_error(values)
    assert "values don't meet the specifications of the schema" in error
    assert message in error, error


@pytest.mark.parametrize(("values", "message"), TEMPLATE_CASES.values(), ids=TEMPLATE_CASES.keys())
def test_chart_checks_refuse(values: dict, message: str) -> None:
    assert message in render_error(values)
