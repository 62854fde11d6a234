"""What each Molecule scenario must find: its deployment profile, written down independently of
group_vars/all/profiles.yml so that a wrong profile definition fails here instead of being copied.

The services themselves are the service list (group_vars/all/services.yml, atlas_services): a new service is
data there, and every check here loops over it; only which profile runs which service, whether its databases
persist, whether tokens are required and which entry it takes are written down here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
with open(REPO_ROOT / "group_vars" / "all" / "services.yml") as _fh:
    SERVICES: tuple[str, ...] = tuple(yaml.safe_load(_fh)["atlas_services"])
with open(REPO_ROOT / "charts" / "atlas" / "values.yaml") as _fh:
    CHART = yaml.safe_load(_fh)
# The service that issues the tokens (charts/atlas/values.yaml authentication.provider): its API is the token
# endpoint, not records; every other service is an API of records that checks tokens when they are required.
ISSUER = CHART["authentication"]["provider"]
with open(Path(__file__).resolve().parents[1] / "scenarios.yml") as _fh:
    SCENARIO_SETTINGS = yaml.safe_load(_fh) or {}


@dataclass(frozen=True)
class Profile:
    name: str
    services: tuple[str, ...]
    persistence: bool
    # The monitoring stack and the chart's metrics (ServiceMonitors, PrometheusRule, dashboards, exporters).
    observability: bool = False
    # Every /api/v1 call needs a token (the gateway's SecurityPolicy, and the services themselves).
    tokens_required: bool = False

    @property
    def disabled(self) -> tuple[str, ...]:
        return tuple(s for s in SERVICES if s not in self.services)

    @property
    def apis(self) -> tuple[str, ...]:
        """The enabled services whose API holds records (not the token issuer's)."""
        return tuple(s for s in self.services if s != ISSUER)

    @property
    def entry(self) -> str:
        """gateway (the default) or ingress, as the scenario sets it (molecule/shared/scenarios.yml)."""
        return SCENARIO_SETTINGS.get(self.name, {}).get("atlas_entry", "gateway")

    @property
    def checked(self) -> tuple[str, ...]:
        """The services that check tokens: every API but the issuer's, when tokens are required."""
        return self.apis if self.tokens_required else ()


PROFILES = {
    p.name: p
    for p in (
        Profile("full", ("auth", "users", "projects"), persistence=True, observability=True, tokens_required=True),
        Profile("users-only", ("users",), persistence=True),
        Profile("projects-only", ("projects",), persistence=True),
        Profile("ephemeral", ("auth", "users", "projects"), persistence=False, tokens_required=True),
    )
}


def expected_resources(profile: Profile, release: str) -> set[tuple[str, str]]:
    """(kind, name) of every document the chart must render for the profile, `helm test` pods included.

    No Secret: the playbooks create atlas-<service>-db and auth's signing key Secret, and the chart only references
    them. No HPA or PDB: the test inventory leaves autoscaling and disruption budgets off. The entry: the Gateway
    API's Gateway, an HTTPRoute and a BackendTrafficPolicy (every service has a rate limit) per service and a
    SecurityPolicy per service that checks tokens; or one Ingress. With observability (full): the ServiceMonitors,
    the PrometheusRule and the dashboards' ConfigMaps.
    """
    found = {("NetworkPolicy", f"{release}-tests")}
    if profile.entry == "ingress":
        found.add(("Ingress", release))
    else:
        found.add(("Gateway", release))
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
        if profile.entry == "gateway":
            found |= {("HTTPRoute", app), ("BackendTrafficPolicy", app)}
            if service in profile.checked:
                found.add(("SecurityPolicy", app))
        if profile.observability:  # the chart's metrics: one monitor per service and per exporter
            found |= {("ServiceMonitor", app), ("ServiceMonitor", db), ("ConfigMap", f"{app}-dashboard")}
    if profile.observability:
        found |= {("PrometheusRule", f"{release}-metrics"), ("ConfigMap", f"{release}-databases-dashboard")}
    return found
