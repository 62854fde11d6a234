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
    # The monitoring stack and the chart's metrics (ServiceMonitors, PrometheusRule, dashboards, exporters).
    observability: bool = False

    @property
    def disabled(self) -> tuple[str, ...]:
        return tuple(s for s in SERVICES if s not in self.services)


PROFILES = {
    p.name: p
    for p in (
        Profile("full", ("users", "projects"), persistence=True, observability=True),
        Profile("users-only", ("users",), persistence=True),
        Profile("projects-only", ("projects",), persistence=True),
        Profile("ephemeral", ("users", "projects"), persistence=False),
    )
}


def expected_resources(profile: Profile, release: str) -> set[tuple[str, str]]:
    """(kind, name) of every document the chart must render for the profile, `helm test` pods included.

    No Secret: the playbooks create atlas-<service>-db and the chart only references it. No HPA or
    PDB: the test inventory leaves autoscaling and disruption budgets off. With observability (full): the
    ServiceMonitors, the PrometheusRule and the dashboards' ConfigMaps.
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
        if profile.observability:  # the chart's metrics: one monitor per service and per exporter
            found |= {("ServiceMonitor", app), ("ServiceMonitor", db), ("ConfigMap", f"{app}-dashboard")}
    if profile.observability:
        found |= {("PrometheusRule", f"{release}-metrics"), ("ConfigMap", f"{release}-databases-dashboard")}
    return found
