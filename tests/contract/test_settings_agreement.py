"""The chart and the services read the same settings the same way: what the rendered ConfigMap says is
what the service's own parser makes of it, and both refuse a pool smaller than the threads alike.
Fast (helm template and the parsers, no processes); tests/contract/test_settings_boundaries.py starts them."""

from __future__ import annotations

import pytest
from atlas_common.config import POOL_BELOW_THREADS, ConfigError, Settings

from tests.contract.declared import deploy_values, numeric_settings, services
from tests.support.chart import find, render, render_error

SERVICES = [s.name for s in services()]


def _config_map(values: dict, service: str) -> dict[str, str]:
    return find(render({**deploy_values(service), **values}), "ConfigMap", f"atlas-{service}")["data"]


def _extremes(service: str, end: int) -> dict:
    """Every numeric chart value of the service at one end of its range (0: minimum, 1: maximum)."""
    values = {s.key: s.bounds[end] for s in numeric_settings() if s.service == service}
    grace = values.get(f"{service}.config.gracefulTimeout", 0)
    values[f"{service}.terminationGracePeriodSeconds"] = grace + 10  # _validate.tpl: above preStop + graceful
    return values


@pytest.mark.parametrize("end", [0, 1], ids=["minimum", "maximum"])
@pytest.mark.parametrize("service", SERVICES)
def test_the_configmap_reads_back_as_the_chart_values(service: str, end: int) -> None:
    """Each chart key reaches its own variable, in a form the service parses back to the same value (no
    6.7108864e+07 for 67108864), and the ConfigMap sets no variable the service does not declare."""
    values = _extremes(service, end)
    data = _config_map(values, service)
    (found,) = [s for s in services() if s.name == service]
    declared_env = {d.env for block in found.blocks for d in block.declared()}
    unknown = {k for k in data if not k.startswith("PG")} - declared_env
    assert not unknown, f"the chart sets variables {service} does not read: {unknown}"
    for block in found.blocks:
        parsed = block.from_env(data)
        for d in block.declared():
            key = f"{service}.{block.chart_block}.{d.chart}"
            if key in values:
                assert getattr(parsed, d.name) == values[key], (key, d.env, data.get(d.env))
                assert data[d.env] == str(values[key]) or float(data[d.env]) == values[key], data[d.env]


@pytest.mark.parametrize("service", SERVICES)
def test_the_pool_follows_the_threads_unless_set(service: str) -> None:
    data = _config_map({f"{service}.config.threads": 8}, service)
    assert "ATLAS_DB_POOL_SIZE" not in data  # null: left to the service's own rule
    assert Settings.from_env(data).pool_size == 8
    data = _config_map({f"{service}.config.threads": 8, f"{service}.config.poolSize": 12}, service)
    assert (data["ATLAS_DB_POOL_SIZE"], Settings.from_env(data).pool_size) == ("12", 12)
    data = _config_map({f"{service}.config.threads": 8, f"{service}.config.poolSize": None}, service)
    assert Settings.from_env(data).pool_size == 8  # an explicit null is the same as the default


@pytest.mark.parametrize(("pool", "threads"), [(3, 4), (4, 4), (5, 4), (1, 1), (1, 2), (63, 64), (64, 64), (100, 64)])
def test_chart_and_service_refuse_a_pool_below_the_threads_alike(pool: int, threads: int) -> None:
    values = {"users.config.poolSize": pool, "users.config.threads": threads}
    env = {"ATLAS_DB_POOL_SIZE": str(pool), "ATLAS_THREADS": str(threads)}
    if pool >= threads:
        assert _config_map(values, "users")["ATLAS_DB_POOL_SIZE"] == str(pool)
        assert Settings.from_env(env).pool_size == pool
        return
    chart = render_error(values)
    assert f"users.config.poolSize ({pool}) must be at least users.config.threads ({threads})" in chart
    with pytest.raises(ConfigError) as service:
        Settings.from_env(env)
    assert f"ATLAS_DB_POOL_SIZE ({pool}) must be at least ATLAS_THREADS ({threads})" in str(service.value)
    assert POOL_BELOW_THREADS in chart and POOL_BELOW_THREADS in str(service.value)  # the same reason
