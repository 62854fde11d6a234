"""The Atlas settings, turned into the chart's values and checked against the chart's own schema.

The per-service settings in group_vars are in the chart's shape (charts/atlas/values.yaml): no renaming
layer. They come in layers, later wins (see group_vars/all/services.yml); each leaf remembers the layer
that set it, so every problem is reported under the key the user wrote, e.g.
``atlas_service_overrides.users.config.poolSize: 0 is less than the minimum of 1``.

What is valid is declared once, in charts/atlas/values.schema.json (types, bounds, unknown keys); the
few rules across several keys that a JSON schema cannot say are the chart's _validate.tpl, mirrored
here so that they, too, fail before any cluster call (tests/provisioning/test_settings_agree.py renders
each case through both and requires both to refuse it).
"""

from __future__ import annotations

import copy
import difflib
import re
from typing import Any

from ansible.errors import AnsibleFilterError

try:
    import jsonschema
except ImportError:  # pragma: no cover - the project venv has it (requirements-dev.txt)
    jsonschema = None

# Keys the playbooks set themselves; a layer that sets them is refused, naming what to change instead.
_COMPUTED = {
    "enabled": "the profile decides which services run (atlas_profile / atlas_profiles.<profile>.services)",
    "postgresql.persistence.enabled": "the profile decides (atlas_profiles.<profile>.persistence)",
    "postgresql.auth.password": "passwords never go into settings: see atlas_db_password_source",
    "postgresql.auth.existingSecret": "the playbooks create the Secret: name it with atlas_db_secret_name",
    "externalDatabase.existingSecret": "the playbooks create the Secret: name it with atlas_db_secret_name",
}

# Per-service keys that no longer exist: the old key stops the run saying why (README, "Renamed settings"),
# instead of a "did you mean" that would point at an unrelated key.
_REMOVED = {
    "config.timeout": "removed: granian, the services' server, has no silent-worker timeout; the liveness probe"
    " (/livez) restarts a pod whose workers stop answering (README, 'Renamed settings')",
}


def _merge(target: dict, layer: dict, name: str, origins: dict, prefix: str) -> None:
    """Deep-merge ``layer`` into ``target`` (dicts merge, anything else replaces), recording origins."""
    for key, value in layer.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value, name, origins, path + ".")
            continue
        target[key] = copy.deepcopy(value)
        for stale in [p for p in origins if p.startswith(path + ".")]:
            del origins[stale]
        origins[path] = name
        if isinstance(value, dict):
            _record(value, name, origins, path + ".")


def _record(value: dict, name: str, origins: dict, prefix: str) -> None:
    for key, sub in value.items():
        origins[f"{prefix}{key}"] = name
        if isinstance(sub, dict):
            _record(sub, name, origins, f"{prefix}{key}.")


def _get(doc: dict, path: str, default: Any = None) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return default
        doc = doc[part]
    return doc


def _without(doc: dict, path: str) -> dict:
    """A copy of ``doc`` without the key at ``path``."""
    doc = copy.deepcopy(doc)
    *parents, leaf = path.split(".")
    parent = _get(doc, ".".join(parents)) if parents else doc
    parent.pop(leaf, None)
    return doc


def _set(doc: dict, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[leaf] = value


def closest(name: str, choices) -> str | None:
    found = difflib.get_close_matches(str(name), sorted(map(str, choices)), n=1, cutoff=0.6)
    return found[0] if found else None


def _where(path: str, origins: dict) -> str:
    """The group_vars key behind a values path: the layer that set it (or its nearest parent)."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        layer = origins.get(".".join(parts[:end]))
        if layer is None:
            continue
        service, rest = parts[0], ".".join(parts[1:])
        if layer.endswith(f".{service}") or not rest:  # atlas_services.users, atlas_service_overrides.users
            return f"{layer}.{rest}" if rest else layer
        if layer.startswith(("atlas_service_defaults", "atlas_env_service_defaults")):
            return f"{layer}.{rest} (for {service})"
        return layer  # a flat setting (atlas_entry_host) or a computed value, named as such
    return f"{path} (the chart's default)"


def known_services(schema: dict) -> list[str]:
    """The chart's services: its top-level blocks of the shared service shape (definitions/atlasService)."""

    def is_service(prop: dict) -> bool:
        refs = [prop.get("$ref", "")] + [part.get("$ref", "") for part in prop.get("allOf", [])]
        return any(ref.endswith("/atlasService") for ref in refs)

    return sorted(k for k, v in schema.get("properties", {}).items() if is_service(v))


def chart_values(settings: dict) -> dict:
    """{'values': the values document, 'origins': {path: layer}, 'problems': [messages]} (see module doc).

    ``settings`` holds: service_defaults, services, env_service_defaults, service_overrides (the layers),
    enabled (service names), persistence (bool), profile (name), registry (prefix or ""), secret_name
    (a name with <service> in it), top ({values path: [variable name, value]} for the flat settings),
    schema and chart_defaults (the chart's values.schema.json and values.yaml); optionally metrics (bool:
    the chart's metrics on), metrics_from (the variable that turned them on) and metrics_namespace (the
    monitoring stack's namespace when Atlas installs it, "" otherwise). The result also holds
    'secrets': {service: Secret name} for every enabled service.
    """
    schema, problems, origins = settings["schema"], [], {}
    secrets = {name: settings["secret_name"].replace("<service>", name) for name in settings["enabled"]}
    services = known_services(schema)
    for layer in ("atlas_services", "atlas_service_overrides"):
        for key in sorted(set(settings[layer.removeprefix("atlas_")]) - set(services)):
            near = closest(key, services)
            hint = f"did you mean {near}?" if near else f"known services: {', '.join(services)}"
            problems.append(f"{layer}.{key}: unknown service; {hint}")

    values: dict[str, Any] = {}
    for name in services:
        block: dict[str, Any] = {}
        layers = [
            ("atlas_service_defaults", settings["service_defaults"]),
            (f"atlas_services.{name}", settings["services"].get(name) or {}),
            ("atlas_env_service_defaults", settings["env_service_defaults"]),
            (f"atlas_service_overrides.{name}", settings["service_overrides"].get(name) or {}),
        ]
        for layer, content in layers:
            if not isinstance(content, dict):
                problems.append(f"{layer}: must be a mapping of chart settings, got {type(content).__name__}")
                continue
            for path, why in _COMPUTED.items():
                if _get(content, path) is not None:
                    where = _where(f"{name}.{path}", {f"{name}.{path}": layer})
                    problems.append(f"{where}: set by the playbooks ({why})")
            if name == settings.get("provider") and _get(content, "secretFiles") is not None:
                where = _where(f"{name}.secretFiles", {f"{name}.secretFiles": layer})
                problems.append(
                    f"{where}: set by the playbooks (the signing key's Secret: name it with atlas_auth_key_secret_name)"
                )
                content = _without(content, "secretFiles")
            for path, why in _REMOVED.items():
                if _get(content, path) is not None:
                    problems.append(f"{_where(f'{name}.{path}', {f'{name}.{path}': layer})}: {why}")
                    content = _without(content, path)  # said once: not again as an unknown key
            _merge(block, content, layer, origins, f"{name}.")
        values[name] = block
        _set(block, "enabled", name in settings["enabled"])
        origins[f"{name}.enabled"] = f"atlas_profiles.{settings['profile']}.services"
        _set(block, "postgresql.persistence.enabled", bool(settings["persistence"]))
        origins[f"{name}.postgresql.persistence.enabled"] = f"atlas_profiles.{settings['profile']}.persistence"
        # Always written, so the image roles read one place: the repository (registry-prefixed) and the tag
        # ("" = the content hash, filled in by the values role).
        repository = _get(block, "image.repository") or _get(settings["chart_defaults"], f"{name}.image.repository")
        _set(block, "image.repository", f"{settings['registry']}/{repository}" if settings["registry"] else repository)
        _set(block, "image.tag", str(_get(block, "image.tag") or ""))
        # The profile's observability flag turns each chart database's exporter on; a layer may say otherwise.
        metrics_from = settings.get("metrics_from", "")
        db_internal = _get(
            block, "postgresql.enabled", _get(settings["chart_defaults"], f"{name}.postgresql.enabled", True)
        )
        if settings.get("metrics") and db_internal and _get(block, "postgresql.metrics.enabled") is None:
            _set(block, "postgresql.metrics.enabled", True)
            origins[f"{name}.postgresql.metrics.enabled"] = metrics_from
        secret = secrets.get(name, "")
        chart_default = _get(settings["chart_defaults"], f"{name}.postgresql.enabled", True)
        internal = _get(block, "postgresql.enabled", chart_default)
        _set(block, "postgresql.auth.existingSecret", secret if internal else "")
        _set(block, "externalDatabase.existingSecret", "" if internal else secret)
        for path in ("postgresql.auth.existingSecret", "externalDatabase.existingSecret"):
            origins[f"{name}.{path}"] = "atlas_db_secret_name"
    for path, (variable, value) in settings["top"].items():
        _set(values, path, value)
        origins[path] = variable
    _metrics(values, origins, settings)

    problems += values_problems(values, origins, schema, settings["chart_defaults"])
    problems += cross_problems(values, origins, settings["chart_defaults"], settings["enabled"])
    return {"values": values, "origins": origins, "problems": _once(problems), "secrets": secrets}


# The chart's switches the profile's observability flag turns on (charts/atlas/values.yaml, metrics.*).
METRICS_SWITCHES = ("metrics.serviceMonitor.enabled", "metrics.prometheusRule.enabled", "metrics.dashboards.enabled")


def _metrics(values: dict, origins: dict, settings: dict) -> None:
    """With ``metrics`` on: the chart's metrics switches, and, when the stack is Atlas' own
    (``metrics_namespace``), the NetworkPolicies let Prometheus in from that namespace only."""
    if not settings.get("metrics"):
        return
    for path in METRICS_SWITCHES:
        _set(values, path, True)
        origins[path] = settings["metrics_from"]
    if settings.get("metrics_namespace"):
        path = "metrics.serviceMonitor.networkPolicy.namespaceSelector"
        _set(values, path, {"kubernetes.io/metadata.name": settings["metrics_namespace"]})
        origins[path] = "atlas_observability.namespace"


def _once(problems: list[str]) -> list[str]:
    """A mistake in a layer every service shares is one problem: '... (for projects, users): ...'."""
    merged: dict[str, list[str]] = {}
    for problem in problems:
        head, sep, rest = problem.partition(" (for ")
        service, close, tail = rest.partition("):")
        key = f"{head}\0{tail}" if sep and close else problem
        merged.setdefault(key, []).extend([service] if sep and close else [])
    out = []
    for key, services in merged.items():
        head, _, tail = key.partition("\0")
        out.append(f"{head} (for {', '.join(sorted(set(services)))}):{tail}" if services else key)
    return out


def _deep_merged(base: dict, over: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def values_problems(values: dict, origins: dict, schema: dict, chart_defaults: dict) -> list[str]:
    """Every violation of values.schema.json by the chart's defaults overlaid with ``values`` (as helm
    validates them), each named by the group_vars key that caused it."""
    if jsonschema is None:
        raise AnsibleFilterError("the settings role needs the jsonschema package (pip install -r requirements-dev.txt)")
    validator = jsonschema.Draft7Validator(schema)
    problems = []
    merged = _deep_merged(chart_defaults, values)
    for error in sorted(validator.iter_errors(merged), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        path = ".".join(map(str, error.absolute_path))
        if error.validator == "additionalProperties":
            allowed = error.schema.get("properties", {})
            for key in sorted(set(error.instance) - set(allowed)):
                full = f"{path}.{key}" if path else key
                what = "service" if not path else "setting"
                near = closest(key, allowed)
                hint = f"did you mean {near}?" if near else f"allowed: {', '.join(sorted(allowed))}"
                problems.append(f"{_where(full, origins)}: unknown {what}; {hint}")
            continue
        message = error.message
        if error.validator == "pattern" and error.schema.get("description"):
            # The schema says what the pattern means ("a memory quantity, e.g. 128Mi"): say that, not the regex.
            message = f"{error.instance!r} is not {error.schema['description']}"
        problems.append(f"{_where(path, origins)}: {message}")
    return problems


def cross_problems(values: dict, origins: dict, chart_defaults: dict, enabled: list[str]) -> list[str]:
    """The chart's rules across keys (templates/_validate.tpl), plus one only the layers can see: a replica
    count that the autoscaler would silently override."""
    problems = []
    merged = _deep_merged(chart_defaults, values)
    for name in enabled:
        svc = merged.get(name) or {}

        def num(path: str, svc=svc) -> Any:
            return _get(svc, path)

        def at(path: str, name=name) -> str:
            return _where(f"{name}.{path}", origins)

        if num("autoscaling.enabled"):
            if num("autoscaling.minReplicas") > num("autoscaling.maxReplicas"):
                problems.append(
                    f"{at('autoscaling.minReplicas')}: {num('autoscaling.minReplicas')} must not exceed "
                    f"autoscaling.maxReplicas ({num('autoscaling.maxReplicas')})"
                )
            if f"{name}.replicaCount" in origins:
                problems.append(
                    f"{at('replicaCount')}: ignored while autoscaling.enabled is true (the HorizontalPodAutoscaler "
                    "sets the replicas between autoscaling.minReplicas and maxReplicas); remove it or set minReplicas"
                )
        pool, threads = num("config.poolSize"), num("config.threads")
        if isinstance(pool, int) and isinstance(threads, int) and pool < threads:
            problems.append(
                f"{at('config.poolSize')}: {pool} is smaller than config.threads ({threads}): threads would wait for "
                "a database connection and then answer 503; raise it, or leave it unset to follow the threads"
            )
        grace, drain = num("terminationGracePeriodSeconds"), (num("preStopSleepSeconds") or 0)
        graceful = num("config.gracefulTimeout")
        if isinstance(grace, int) and isinstance(graceful, int) and grace <= drain + graceful:
            problems.append(
                f"{at('terminationGracePeriodSeconds')}: {grace} must exceed preStopSleepSeconds + "
                f"config.gracefulTimeout ({drain + graceful}), or requests are cut off"
            )
        if num("postgresql.enabled") is False and not num("externalDatabase.host"):
            problems.append(
                f"{at('postgresql.enabled')}: false needs externalDatabase.host (the server to use instead)"
            )
    return problems


def unknown_variables(names: list[str], known: list[str], renamed: dict[str, str]) -> list[str]:
    """A problem for each atlas_* variable that no role declares: a typo would be silently ignored."""
    problems = []
    for name in sorted(set(names) - set(known)):
        if name in renamed:
            problems.append(f"{name}: renamed to {renamed[name]} (see README, 'Renamed settings')")
            continue
        near = closest(name, known)
        problems.append(f"{name}: unknown setting; " + (f"did you mean {near}?" if near else "no Atlas role reads it"))
    return problems


_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_CHART_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$")
_OBSERVABILITY_PARTS = ("kube_prometheus_stack", "loki", "alloy")


def _unknown_keys(given: Any, known: Any, prefix: str, free: tuple[str, ...]) -> list[str]:
    """Keys of ``given`` that ``known`` (the defaults) lacks, recursively; ``free`` keys hold anything."""
    if not isinstance(given, dict) or not isinstance(known, dict):
        return []
    problems = []
    for key in sorted(given, key=str):
        path = f"{prefix}.{key}"
        if key not in known:
            near = closest(key, known)
            hint = f"did you mean {near}?" if near else f"allowed: {', '.join(sorted(map(str, known)))}"
            problems.append(f"{path}: unknown setting; {hint}")
        elif key not in free:
            problems += _unknown_keys(given[key], known[key], path, free)
    return problems


def _set_by(path: str, overrides: dict, name: str) -> str:
    """The variable that set ``path`` of a settings mapping merged over its defaults: ``name`` when the overrides hold
    the key, else ``name``_defaults."""
    inside = overrides
    for part in path.split("."):
        if not isinstance(inside, dict) or part not in inside:
            return f"{name}_defaults.{path}"
        inside = inside[part]
    return f"{name}.{path}"


def observability(settings: dict) -> dict:
    """The monitoring stack's settings: atlas_observability merged over atlas_observability_defaults, checked.

    ``settings`` holds: defaults, overrides (the two variables), profile (name), profile_value (the
    profile's observability flag). Returns {'settings': merged with enabled resolved, 'enabled_from': the
    variable that decided enabled, 'problems': [messages named by the key the user wrote]}.
    """
    defaults, overrides = settings["defaults"], settings["overrides"]
    problems = _unknown_keys(overrides, defaults, "atlas_observability", free=("values",))
    merged = _deep_merged(defaults, overrides)

    def where(path: str) -> str:
        return _set_by(path, overrides, "atlas_observability")

    enabled = merged.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        problems.append(f"{where('enabled')}: must be true, false or null (follow the profile), got {enabled!r}")
    namespace = merged.get("namespace")
    if not isinstance(namespace, str) or not _DNS_LABEL.match(namespace) or len(namespace) > 63:
        problems.append(f"{where('namespace')}: {namespace!r} is not a lowercase DNS label (a-z, 0-9, '-', at most 63)")
    timeout = merged.get("timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 30 <= timeout <= 3600:
        problems.append(f"{where('timeout')}: must be an integer from 30 to 3600 seconds, got {timeout!r}")
    memory = merged.get("minikube_memory_mb")
    if isinstance(memory, bool) or not isinstance(memory, int) or memory < 2048:
        problems.append(f"{where('minikube_memory_mb')}: must be an integer of at least 2048 (MiB), got {memory!r}")
    user = merged.get("grafana_admin_user")
    if not isinstance(user, str) or not user.strip():
        problems.append(f"{where('grafana_admin_user')}: must be a non-empty name, got {user!r}")
    for part in _OBSERVABILITY_PARTS:
        block = merged.get(part)
        if not isinstance(block, dict):
            problems.append(f"{where(part)}: must be a mapping with repo_url, chart_version and values")
            continue
        url, version, values = block.get("repo_url"), block.get("chart_version"), block.get("values")
        if not isinstance(url, str) or not re.match(r"^https?://[^\s]+$", url):
            problems.append(f"{where(part + '.repo_url')}: {url!r} is not an http(s) chart repository URL")
        if not isinstance(version, str) or not _CHART_VERSION.match(version):
            problems.append(
                f'{where(part + ".chart_version")}: {version!r} is not one chart version (quote it: "1.2.3"; '
                "no ranges: the stack is pinned)"
            )
        if not isinstance(values, dict):
            problems.append(f"{where(part + '.values')}: must be a mapping of the chart's values, got {values!r}")

    profile_value = bool(settings["profile_value"])
    if isinstance(enabled, bool):
        enabled_from = (
            "atlas_observability.enabled" if "enabled" in overrides else "atlas_observability_defaults.enabled"
        )
    else:
        enabled, enabled_from = profile_value, f"atlas_profiles.{settings['profile']}.observability"
    merged["enabled"] = enabled
    return {"settings": merged, "enabled_from": enabled_from, "problems": problems}


ENTRIES = ("gateway", "ingress")
# The gateway's chart keys (charts/atlas/values.yaml gateway.*) that atlas_gateway sets; enabled is atlas_entry and
# host is atlas_entry_host.
_GATEWAY_CHART_KEYS = ("create", "className", "name", "namespace", "sectionName", "port")
_OCI_REF = re.compile(r"^oci://[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+$")
_OCI_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$")
# What Kubernetes accepts as a Secret's name (a DNS subdomain, RFC 1123).
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HOST = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def entry(settings: dict) -> dict:
    """How requests get in and who checks them: atlas_entry, atlas_entry_host, atlas_gateway (merged over
    atlas_gateway_defaults), the ingress settings and the atlas_auth_* settings, turned into the chart's values.

    ``settings`` holds: entry, host, ingress_class, ingress_tls_secret, gateway_defaults, gateway (the overrides),
    auth_required (None: the profile's), profile, profile_tokens (the profile's tokens_required), issuer, audience,
    jwks_uri, key_secret_name, enabled (the profile's services), chart_defaults (charts/atlas/values.yaml).

    Returns {'top': {values path: [the variable that set it, value]} for atlas_chart_values, 'gateway': the merged
    gateway settings, 'controller': whether the gateway role installs Envoy Gateway, 'auth': {required,
    required_from, issuer, provider, provider_enabled, key_secret, key}, 'problems': [messages named by the variable
    the user wrote]}.
    """
    problems: list[str] = []
    chart = settings["chart_defaults"]
    top: dict[str, list] = {}

    kind = settings["entry"]
    if kind not in ENTRIES:
        near = closest(kind, ENTRIES)
        hint = f"did you mean {near}? " if near else ""
        problems.append(f"atlas_entry: {kind!r} is not an entry; {hint}(allowed: {', '.join(ENTRIES)})")
    host = settings["host"]
    host_ok = isinstance(host, str) and bool(_HOST.match(host)) and len(host) <= 253
    if not host_ok:  # said once here, not once per entry by the chart's schema
        problems.append(f"atlas_entry_host: {host!r} is not a DNS name (lowercase, e.g. atlas.local)")

    # The gateway: overrides over defaults, unknown keys named with the closest; values and proxy are free-form.
    defaults, overrides = settings["gateway_defaults"], settings["gateway"]
    if not isinstance(overrides, dict):
        problems.append(f"atlas_gateway: must be a mapping of gateway settings, got {type(overrides).__name__}")
        overrides = {}
    problems += _unknown_keys(overrides, defaults, "atlas_gateway", free=("values", "proxy"))
    gateway = _deep_merged(defaults, overrides)

    def where(path: str) -> str:
        return _set_by(path, overrides, "atlas_gateway")

    for key in _GATEWAY_CHART_KEYS:
        top[f"gateway.{key}"] = [where(key), gateway.get(key)]
    top["gateway.enabled"] = ["atlas_entry", kind == "gateway"]
    if host_ok:
        top["gateway.host"] = ["atlas_entry_host", host]
    create = gateway.get("create")
    if kind == "gateway" and create is False and not gateway.get("name"):
        problems.append(
            "atlas_gateway.name: required when atlas_gateway.create is false"
            " (the existing Gateway the routes attach to)"
        )
    controller = gateway.get("controller")
    if not isinstance(controller, dict):
        problems.append(f"{where('controller')}: must be a mapping with chart_ref, chart_version, namespace, ...")
        controller = {}
    ref, version = controller.get("chart_ref"), controller.get("chart_version")
    if not isinstance(ref, str) or not _OCI_REF.match(ref):
        problems.append(f"{where('controller.chart_ref')}: {ref!r} is not an OCI chart (oci://<registry>/<path>)")
    if not isinstance(version, str) or not _OCI_VERSION.match(version):
        problems.append(
            f'{where("controller.chart_version")}: {version!r} is not one chart version (quote it: "v1.9.0"; '
            "no ranges: the controller is pinned)"
        )
    namespace = controller.get("namespace")
    if not isinstance(namespace, str) or not _DNS_LABEL.match(namespace) or len(namespace) > 63:
        problems.append(
            f"{where('controller.namespace')}: {namespace!r} is not a lowercase DNS label (a-z, 0-9, '-', at most 63)"
        )
    else:
        top["networkPolicy.gatewayNamespace"] = [where("controller.namespace"), namespace]
    timeout = controller.get("timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 30 <= timeout <= 3600:
        problems.append(f"{where('controller.timeout')}: must be an integer from 30 to 3600 seconds, got {timeout!r}")
    for free in ("values", "proxy"):
        if not isinstance(controller.get(free), dict):
            problems.append(f"{where('controller.' + free)}: must be a mapping, got {controller.get(free)!r}")

    # The Ingress: always written (its host and class are checked whichever entry is on).
    tls = settings["ingress_tls_secret"]
    top["ingress.enabled"] = ["atlas_entry", kind == "ingress"]
    top["ingress.className"] = ["atlas_ingress_class", settings["ingress_class"]]
    if host_ok:
        top["ingress.host"] = ["atlas_entry_host", host]
    top["ingress.tls.enabled"] = ["atlas_ingress_tls_secret", len(tls) > 0]
    top["ingress.tls.secretName"] = ["atlas_ingress_tls_secret", tls]

    # Tokens: who issues them and whether they are required.
    provider = (chart.get("authentication") or {}).get("provider") or ""
    provider_enabled = bool(provider) and provider in settings["enabled"]
    required = settings["auth_required"]
    if required is None:
        required = bool(settings["profile_tokens"])
        required_from = f"atlas_profiles.{settings['profile']}.tokens_required"
    elif isinstance(required, bool):
        required_from = "atlas_auth_required"
    else:
        problems.append(f"atlas_auth_required: must be true, false or null (follow the profile), got {required!r}")
        required, required_from = False, "atlas_auth_required"
    issuer, issuer_from = settings["issuer"], "atlas_auth_issuer"
    if not issuer and host_ok:
        secure = kind == "ingress" and len(tls) > 0
        issuer, issuer_from = f"{'https' if secure else 'http'}://{host}", "atlas_entry_host"
    if required and not provider_enabled and not settings["issuer"]:
        problems.append(
            f"{required_from}: tokens are required, but nobody issues them: add {provider or 'auth'} to "
            f"atlas_profiles.{settings['profile']}.services, or set atlas_auth_issuer to an external issuer"
        )
    top["authentication.required"] = [required_from, required]
    top["authentication.issuer"] = [issuer_from, issuer]
    top["authentication.audience"] = ["atlas_auth_audience", settings["audience"]]
    top["authentication.jwksUri"] = ["atlas_auth_jwks_uri", settings["jwks_uri"]]
    key_secret = settings["key_secret_name"]
    if not isinstance(key_secret, str) or not _DNS_SUBDOMAIN.match(key_secret) or len(key_secret) > 253:
        problems.append(f"atlas_auth_key_secret_name: {key_secret!r} is not a Secret name (a lowercase DNS subdomain)")
    files = copy.deepcopy(_get(chart, f"{provider}.secretFiles") or []) if provider else []
    key = files[0].get("key", "") if files else ""
    if provider_enabled and files:
        files[0]["secretName"] = key_secret
        top[f"{provider}.secretFiles"] = ["atlas_auth_key_secret_name", files]

    return {
        "top": top,
        "gateway": gateway,
        "controller": kind == "gateway" and create is True,
        "auth": {
            "required": required,
            "required_from": required_from,
            "issuer": issuer,
            "provider": provider,
            "provider_enabled": provider_enabled,
            "key_secret": key_secret,
            "key": key,
        },
        "problems": problems,
    }


_PROFILE_KEYS = ("services", "persistence", "observability", "tokens_required")


def profile_problems(profiles: dict, known: list[str]) -> list[str]:
    """Misspelt keys and unknown services in atlas_profiles, each named with the closest valid one (the shape of
    each profile is checked by the settings role's next task)."""
    problems = []
    for name, profile in sorted((profiles or {}).items()):
        if not isinstance(profile, dict):
            continue
        for key in sorted(set(profile) - set(_PROFILE_KEYS), key=str):
            near = closest(key, _PROFILE_KEYS)
            hint = f"did you mean {near}?" if near else f"allowed: {', '.join(_PROFILE_KEYS)}"
            problems.append(f"atlas_profiles.{name}.{key}: unknown setting; {hint}")
        services = profile.get("services")
        for service in services if isinstance(services, list) else []:
            if service not in known:
                near = closest(service, known)
                hint = f"did you mean {near}?" if near else f"known services: {', '.join(known)}"
                problems.append(f"atlas_profiles.{name}.services: {service!r} is not a service; {hint}")
    return problems


def rate_limited(values: dict, chart_defaults: dict, enabled: list[str]) -> list[str]:
    """The enabled services whose rateLimit.enabled is on (the values over the chart's defaults), by name."""
    merged = _deep_merged(chart_defaults, values)
    return sorted(name for name in enabled if _get(merged, f"{name}.rateLimit.enabled") is True)


class FilterModule:
    def filters(self):
        return {
            "atlas_chart_values": chart_values,
            "atlas_known_services": known_services,
            "atlas_unknown_variables": unknown_variables,
            "atlas_observability": observability,
            "atlas_entry": entry,
            "atlas_rate_limited": rate_limited,
            "atlas_profile_problems": profile_problems,
        }
