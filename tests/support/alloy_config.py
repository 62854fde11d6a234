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

# Loki's push URL for the Loki chart (grafana-community/helm-charts, tag loki-18.11.0) installed as release
# "loki" in namespace "monitoring", Monolithic, gateway off: charts/loki/templates/NOTES.txt ("Sending logs
# to Loki", monolithic without gateway: http://<fullname>.<namespace>.svc...:<http_listen_port 3100>
# /loki/api/v1/push). Used only while the observability role's defaults do not set
# observability_loki_push_url; when they do, theirs is used (and docs/logs.md must agree).
ASSUMED_PUSH_URL = "http://loki.monitoring.svc:3100/loki/api/v1/push"


def project_namespace() -> str:
    return _yaml("group_vars", "all", "atlas.yml")["atlas_namespace"]


def _yaml(*parts: str) -> dict:
    with open(os.path.join(REPO_ROOT, *parts)) as fh:
        return yaml.safe_load(fh) or {}


def role_push_url() -> str | None:
    """observability_loki_push_url as the observability role's defaults make it with no overrides, if
    they set it: templated with those defaults and settings_observability as the settings role makes it
    from group_vars/all/observability.yml when nothing is overridden (its defaults)."""
    if not os.path.exists(ROLE_DEFAULTS):
        return None
    defaults = _yaml(ROLE_DEFAULTS)
    if "observability_loki_push_url" not in defaults:
        return None
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    stack = _yaml("group_vars", "all", "observability.yml")["atlas_observability_defaults"]
    # Role defaults are templates to Ansible (trusted, as files of the project): mark them so here too.
    variables = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in defaults.items()}
    variables["settings_observability"] = stack
    return Templar(loader=DataLoader(), variables=variables).template(
        trust_as_template("{{ observability_loki_push_url }}")
    )


def effective_push_url() -> str:
    """The URL the role renders the pipeline with."""
    return role_push_url() or ASSUMED_PUSH_URL


def render(namespace: str | None = None, push_url: str | None = None, source: str | None = None) -> str:
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    if source is None:
        with open(TEMPLATE) as fh:
            source = fh.read()
    variables = {
        "atlas_namespace": namespace or project_namespace(),
        "observability_loki_push_url": push_url or effective_push_url(),
    }
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(source))


def components(namespace: str | None = None, push_url: str | None = None, source: str | None = None) -> list[Block]:
    return parse(render(namespace, push_url, source))
