"""The chart's checks across keys (templates/_validate.tpl and the check templates it includes) report every
failure of one set of values at once, each naming its key, so one install attempt shows every mistake."""

from __future__ import annotations

from tests.support.chart import render, render_error

EVERY_MISTAKE = {
    # users: an external database with neither host nor Secret, yet backed up and exported
    "users.postgresql.enabled": False,
    "users.postgresql.backup.enabled": True,
    "users.postgresql.metrics.enabled": True,
    "users.autoscaling.enabled": True,
    "users.autoscaling.minReplicas": 4,
    "users.autoscaling.maxReplicas": 3,
    "users.config.threads": 8,
    "users.config.poolSize": 4,
    # projects: a backwards cron range and a grace period too short for the drain
    "projects.postgresql.backup.schedule": "0 5-1 * * *",
    "projects.terminationGracePeriodSeconds": 10,
    "ingress.tls.enabled": True,
    "metrics.serviceMonitor.enabled": True,
    "metrics.serviceMonitor.interval": "10s",
    "metrics.serviceMonitor.scrapeTimeout": "20s",
}
MESSAGES = [
    "users.postgresql.backup.enabled needs users.postgresql.enabled",
    "users.externalDatabase.host is required when users.postgresql.enabled is false",
    "users.externalDatabase.existingSecret is required when users.postgresql.enabled is false",
    "users.autoscaling.minReplicas (4) must not exceed users.autoscaling.maxReplicas (3)",
    "users.config.poolSize (4) must be at least users.config.threads (8)",
    'projects.postgresql.backup.schedule "0 5-1 * * *": the range 5-1 runs backwards (5 > 1)',
    "projects.terminationGracePeriodSeconds (10) must exceed",
    "ingress.tls.secretName is required when ingress.tls.enabled is true",
    "users.postgresql.metrics.enabled needs users.postgresql.enabled",
    "metrics.serviceMonitor.scrapeTimeout (20s) must not exceed metrics.serviceMonitor.interval (10s)",
]


def test_every_cross_key_mistake_is_reported_in_one_run() -> None:
    error = render_error(EVERY_MISTAKE)
    missing = [m for m in MESSAGES if m not in error]
    assert missing == [], error
    assert f"{len(MESSAGES)} problem(s) in the values:" in error
    # One per line, each on its own "  - " item.
    assert error.count("\n  - ") == len(MESSAGES)


def test_one_mistake_is_one_item() -> None:
    error = render_error({"ingress.tls.enabled": True})
    assert "1 problem(s) in the values:\n  - ingress.tls.secretName is required" in error


def test_valid_values_render() -> None:
    assert render({})
