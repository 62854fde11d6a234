"""What each Molecule scenario must find: its deployment profile, written down independently of
group_vars/all/profiles.yml so that a wrong profile definition fails here instead of being copied."""

from __future__ import annotations

from dataclasses import dataclass

SERVICES = ("users", "projects")


@dataclass(frozen=True)
class Profile:
    name: str
    services: tuple[str, ...]
    persistence: bool

    @property
    def disabled(self) -> tuple[str, ...]:
        return tuple(s for s in SERVICES if s not in self.services)


PROFILES = {
    p.name: p
    for p in (
        Profile("full", ("users", "projects"), persistence=True),
        Profile("users-only", ("users",), persistence=True),
        Profile("projects-only", ("projects",), persistence=True),
        Profile("ephemeral", ("users", "projects"), persistence=False),
    )
}


def expected_resources(profile: Profile, release: str) -> set[tuple[str, str]]:
    """(kind, name) of every document the chart must render for the profile, `helm test` pods included.

    No Secret: the playbooks create atlas-<service>-db and the chart only references it. No HPA or
    PDB: the test inventory leaves autoscaling and disruption budgets off.
    """
    found = {("Ingress", release), ("NetworkPolicy", f"{release}-tests")}
    for service in profile.services:
        app, db = f"{release}-{service}", f"{release}-{service}-postgresql"
        found |= {
            ("Deployment", app),
            ("Service", app),
            ("ConfigMap", app),
            ("ServiceAccount", app),
            ("NetworkPolicy", app),
            ("StatefulSet", db),
            ("Service", db),
            ("NetworkPolicy", db),
            ("Pod", f"{app}-test"),
        }
    return found
