"""The toggle matrix (users x projects x postgresql x persistence) and what each combination must yield.

The expectation is written from the chart's contract (issue 3, docs/interfaces.md), independently of
the templates, so a resource appearing or vanishing in any combination fails a test.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

# An external database needs a host and the Secret holding its password.
EXTERNAL_DB = {"host": "db.example.test", "existingSecret": "external-db"}


@dataclass(frozen=True)
class Combo:
    users: bool
    projects: bool
    postgresql: bool
    persistence: bool

    @property
    def id(self) -> str:
        def flag(name: str, on: bool) -> str:
            return name if on else f"no-{name}"

        return "-".join(
            flag(n, v)
            for n, v in (
                ("users", self.users),
                ("projects", self.projects),
                ("pg", self.postgresql),
                ("persist", self.persistence),
            )
        )

    @property
    def enabled(self) -> list[str]:
        return [name for name, on in (("users", self.users), ("projects", self.projects)) if on]

    def values(self) -> dict:
        values: dict = {}
        for name in ("users", "projects"):
            values[f"{name}.enabled"] = getattr(self, name)
            values[f"{name}.postgresql.enabled"] = self.postgresql
            values[f"{name}.postgresql.persistence.enabled"] = self.persistence
            if not self.postgresql:
                for key, value in EXTERNAL_DB.items():
                    values[f"{name}.externalDatabase.{key}"] = value
        return values

    def expected_resources(self) -> set[tuple[str, str]]:
        ids: set[tuple[str, str]] = set()
        for name in self.enabled:
            full = f"atlas-{name}"
            ids |= {(kind, full) for kind in ("Deployment", "Service", "ConfigMap", "ServiceAccount", "NetworkPolicy")}
            ids.add(("Pod", f"{full}-test"))
            if self.postgresql:
                db = f"{full}-postgresql"
                ids |= {(kind, db) for kind in ("StatefulSet", "Service", "Secret", "NetworkPolicy")}
        if self.enabled:
            ids |= {("Ingress", "atlas"), ("NetworkPolicy", "atlas-tests")}
        return ids


COMBOS = [Combo(*flags) for flags in itertools.product((True, False), repeat=4)]
