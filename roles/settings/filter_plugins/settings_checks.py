"""Range and format checks on the merged per-service settings that an argument spec cannot express.

Each problem names the setting (``<service>.<path>``) and what is allowed, so one run reports all of them.
"""

from __future__ import annotations

import re

# Kubernetes resource quantities, restricted to the spellings people actually use.
_CPU = re.compile(r"^(?:[1-9][0-9]*m|[0-9]+(?:\.[0-9]+)?)$")
_MEMORY = re.compile(r"^[1-9][0-9]*(?:Ki|Mi|Gi|Ti|k|M|G|T)?$")
# Docker reference grammar: optional registry host[:port], lowercase path components, tag.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(
    rf"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?/)?"
    rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$"
)
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# PostgreSQL identifiers the chart passes unquoted.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_DNS_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def _int_range(problems: list[str], name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        problems.append(f"{name}: must be an integer from {low} to {high}, got {value}")


def _match(problems: list[str], name: str, value: str, pattern: re.Pattern, allowed: str) -> None:
    if not pattern.match(value):
        problems.append(f"{name}: {value!r} is not {allowed}")


def service_problems(name: str, s: dict, replicas_max: int = 50) -> list[str]:
    """Every problem with one service's merged settings (already type-checked by the argument spec)."""
    p: list[str] = []
    _match(
        p,
        f"{name}.image.repository",
        s["image"]["repository"],
        _REPOSITORY,
        "an image repository (lowercase, e.g. atlas/users or registry.example.com/atlas/users)",
    )
    if s["image"]["tag"]:
        _match(
            p,
            f"{name}.image.tag",
            s["image"]["tag"],
            _TAG,
            "an image tag (letters, digits, '_', '.', '-'; at most 128; \"\" = content hash)",
        )
    _int_range(p, f"{name}.replicas", s["replicas"], 0, replicas_max)
    for kind in ("requests", "limits"):
        res = s["resources"][kind]
        _match(p, f"{name}.resources.{kind}.cpu", res["cpu"], _CPU, "a CPU quantity (e.g. 100m, 0.5, 2)")
        _match(p, f"{name}.resources.{kind}.memory", res["memory"], _MEMORY, "a memory quantity (e.g. 128Mi, 1Gi)")
    cfg = s["config"]
    _int_range(p, f"{name}.config.pool_size", cfg["pool_size"], 1, 100)
    _int_range(p, f"{name}.config.workers", cfg["workers"], 1, 32)
    _int_range(p, f"{name}.config.threads", cfg["threads"], 1, 64)
    hpa = s["autoscaling"]
    _int_range(p, f"{name}.autoscaling.min_replicas", hpa["min_replicas"], 1, replicas_max)
    _int_range(p, f"{name}.autoscaling.max_replicas", hpa["max_replicas"], 1, replicas_max)
    _int_range(p, f"{name}.autoscaling.target_cpu_percent", hpa["target_cpu_percent"], 1, 100)
    if hpa["min_replicas"] > hpa["max_replicas"]:
        p.append(
            f"{name}.autoscaling: min_replicas ({hpa['min_replicas']}) must not exceed "
            f"max_replicas ({hpa['max_replicas']})"
        )
    _int_range(p, f"{name}.pdb.min_available", s["pdb"]["min_available"], 0, replicas_max)
    db = s["database"]
    _match(p, f"{name}.database.name", db["name"], _IDENTIFIER, "a PostgreSQL name (lowercase, digits, '_')")
    _match(p, f"{name}.database.user", db["user"], _IDENTIFIER, "a PostgreSQL name (lowercase, digits, '_')")
    _match(
        p, f"{name}.database.persistence_size", db["persistence_size"], _MEMORY, "a storage quantity (e.g. 1Gi, 500Mi)"
    )
    if db["external_host"]:
        _match(p, f"{name}.database.external_host", db["external_host"], _DNS_NAME, "a DNS name")
    _int_range(p, f"{name}.database.external_port", db["external_port"], 1, 65535)
    if s.get("users_service"):
        _int_range(p, f"{name}.users_service.timeout", s["users_service"]["timeout"], 1, 60)
        _int_range(p, f"{name}.users_service.retries", s["users_service"]["retries"], 0, 10)
    return p


def atlas_settings_problems(services: dict, replicas_max: int = 50) -> list[str]:
    """Problems of every service, in a stable order."""
    return [msg for name in sorted(services) for msg in service_problems(name, services[name], replicas_max)]


class FilterModule:
    def filters(self):
        return {"atlas_settings_problems": atlas_settings_problems}
