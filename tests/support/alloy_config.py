"""roles/observability/templates/atlas-logs.alloy.j2 rendered as Ansible renders it, and parsed.

Rendered with ansible-core's own Templar (the engine behind the template lookup the role uses), with
the project's atlas_namespace from group_vars/all/atlas.yml unless a test passes another.
"""

from __future__ import annotations

import os

import yaml

from .alloy_syntax import Block, parse

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = os.path.join(REPO_ROOT, "roles", "observability", "templates", "atlas-logs.alloy.j2")
ROLE_DEFAULTS = os.path.join(REPO_ROOT, "roles", "observability", "defaults", "main.yml")

# Loki's push URL when the Loki chart (grafana-community/helm-charts, tag loki-18.11.0) is installed as
# release "loki" in namespace "monitoring" with its default gateway: charts/loki/templates/NOTES.txt
# ("Sending logs to Loki": http://<fullname>-gateway.<namespace>.svc.<clusterDomain>/loki/api/v1/push,
# gateway.service.port 80). The release name and namespace are the observability role's: an assumption
# until its defaults set observability_loki_push_url (then those win, and docs/logs.md must agree).
ASSUMED_PUSH_URL = "http://loki-gateway.monitoring.svc.cluster.local/loki/api/v1/push"


def project_namespace() -> str:
    with open(os.path.join(REPO_ROOT, "group_vars", "all", "atlas.yml")) as fh:
        return yaml.safe_load(fh)["atlas_namespace"]


def role_push_url() -> str | None:
    """observability_loki_push_url as the observability role's defaults set it, if they do."""
    if not os.path.exists(ROLE_DEFAULTS):
        return None
    with open(ROLE_DEFAULTS) as fh:
        return (yaml.safe_load(fh) or {}).get("observability_loki_push_url")


def render(namespace: str | None = None, push_url: str | None = None, source: str | None = None) -> str:
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    if source is None:
        with open(TEMPLATE) as fh:
            source = fh.read()
    variables = {
        "atlas_namespace": namespace or project_namespace(),
        "observability_loki_push_url": push_url or role_push_url() or ASSUMED_PUSH_URL,
    }
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(source))


def components(namespace: str | None = None, push_url: str | None = None, source: str | None = None) -> list[Block]:
    return parse(render(namespace, push_url, source))
