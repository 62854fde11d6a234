"""Bad settings stop render.yml before anything is written or touches a cluster, naming the setting the user
wrote (the group_vars or -e key, not the chart's), with the closest valid name for a typo.

Each case is one real ansible-playbook run of playbooks/render.yml with -e overrides (or a bad inventory);
the assertion is on the message the user sees.
"""

from __future__ import annotations

import os

import pytest

from tests.provisioning.ansible_run import REPO_ROOT, run_playbook

RENDER = "playbooks/render.yml"


def _svc(service: str, **settings) -> dict:
    return {"atlas_service_overrides": {service: settings}}


CASES = {
    "unknown profile": (
        {"atlas_profile": "everything"},
        'atlas_profile: "everything" is not a profile; allowed: ephemeral, full, projects-only, users-only',
    ),
    "misspelt atlas variable": (
        {"atlas_service_overides": {"users": {"replicaCount": 2}}},
        "atlas_service_overides: unknown setting; did you mean atlas_service_overrides?",
    ),
    "renamed atlas variable": (
        {"atlas_service_env": {"replicaCount": 2}},
        "atlas_service_env: renamed to atlas_env_service_defaults",
    ),
    "removed per-service setting": (
        _svc("users", config={"timeout": 30}),
        "atlas_service_overrides.users.config.timeout: removed: granian, the services' server, has no silent-worker"
        " timeout",
    ),
    "unknown service in overrides": (
        {"atlas_service_overrides": {"billing": {"replicaCount": 1}}},
        "atlas_service_overrides.billing: unknown service; known services: auth, projects, users",
    ),
    "misspelt service in atlas_services": (
        {"atlas_services": {"users": {}, "projects": {}, "user": {}}},
        "atlas_services.user: unknown service; did you mean users?",
    ),
    "profile naming an unknown service": (
        {"atlas_profiles": {"mine": {"services": ["users", "billing"], "persistence": True}}, "atlas_profile": "mine"},
        "atlas_profiles.mine.services: 'billing' is not a service; known services: auth, projects, users",
    ),
    "profile naming a misspelt service": (
        {"atlas_profiles": {"mine": {"services": ["users", "auht"], "persistence": True}}, "atlas_profile": "mine"},
        "atlas_profiles.mine.services: 'auht' is not a service; did you mean auth?",
    ),
    "profile without persistence flag": (
        {"atlas_profiles": {"mine": {"services": ["users"]}}, "atlas_profile": "mine"},
        "atlas_profiles.mine: must be {services:",
    ),
    "negative replicas": (
        _svc("users", replicaCount=-1),
        "atlas_service_overrides.users.replicaCount: -1 is less than the minimum of 0",
    ),
    "too many replicas": (
        _svc("projects", replicaCount=500),
        "atlas_service_overrides.projects.replicaCount: 500 is greater than the maximum of 50",
    ),
    "replicas not a number": (
        _svc("users", replicaCount="two"),
        "atlas_service_overrides.users.replicaCount: 'two' is not of type 'integer'",
    ),
    "replicas beside autoscaling": (
        {"atlas_env_service_defaults": {"replicaCount": 2, "autoscaling": {"enabled": True}}},
        "atlas_env_service_defaults.replicaCount (for auth, projects, users): ignored while autoscaling.enabled is"
        " true",
    ),
    "malformed memory size": (
        _svc("users", resources={"limits": {"memory": "256MB"}}),
        "atlas_service_overrides.users.resources.limits.memory: '256MB' is not a Kubernetes quantity",
    ),
    "malformed cpu": (
        _svc("projects", resources={"requests": {"cpu": "fast"}}),
        "atlas_service_overrides.projects.resources.requests.cpu: 'fast' is not a Kubernetes quantity",
    ),
    "malformed persistence size": (
        _svc("users", postgresql={"persistence": {"size": "lots"}}),
        "atlas_service_overrides.users.postgresql.persistence.size: 'lots' is not a Kubernetes quantity",
    ),
    "bad image repository": (
        _svc("users", image={"repository": "Atlas/Users!"}),
        "atlas_service_overrides.users.image.repository: 'Atlas/Users!' is not an image repository",
    ),
    "bad image tag": (
        _svc("projects", image={"tag": "v1 beta"}),
        "atlas_service_overrides.projects.image.tag: 'v1 beta' is not an image tag",
    ),
    "bad registry prefix": (
        {"atlas_image_registry": "https://registry.example.com"},
        'atlas_image_registry: "https://registry.example.com" is not a registry prefix',
    ),
    "unknown log level": (
        _svc("users", config={"logLevel": "TRACE"}),
        "atlas_service_overrides.users.config.logLevel: 'TRACE' is not one of ['DEBUG', 'INFO', 'WARNING', 'ERROR']",
    ),
    "unknown setting key": (
        _svc("users", replica=2),
        "atlas_service_overrides.users.replica: unknown setting; did you mean replicaCount?",
    ),
    "unknown nested key, every service": (
        {"atlas_service_defaults": {"config": {"threds": 8}}},
        "atlas_service_defaults.config.threds (for auth, projects, users): unknown setting; did you mean threads?",
    ),
    "old snake_case key": (
        _svc("users", config={"pool_size": 8}),
        "atlas_service_overrides.users.config.pool_size: unknown setting; did you mean poolSize?",
    ),
    "pool size out of range": (
        _svc("users", config={"poolSize": 0}),
        "atlas_service_overrides.users.config.poolSize: 0 is less than the minimum of 1",
    ),
    "pool smaller than the threads": (
        _svc("projects", config={"threads": 8, "poolSize": 4}),
        "atlas_service_overrides.projects.config.poolSize: 4 is smaller than config.threads (8)",
    ),
    "autoscaling min above max": (
        _svc("projects", autoscaling={"enabled": True, "minReplicas": 6, "maxReplicas": 3}),
        "atlas_service_overrides.projects.autoscaling.minReplicas: 6 must not exceed autoscaling.maxReplicas (3)",
    ),
    "password in the settings": (
        _svc("users", postgresql={"auth": {"password": "hunter2hunter2"}}),
        "atlas_service_overrides.users.postgresql.auth.password: set by the playbooks",
    ),
    "persistence against the profile": (
        _svc("users", postgresql={"persistence": {"enabled": False}}),
        "atlas_service_overrides.users.postgresql.persistence.enabled: set by the playbooks (the profile decides",
    ),
    "bad namespace": (
        {"atlas_namespace": "Atlas_NS"},
        'atlas_namespace: "Atlas_NS" is not a lowercase DNS label',
    ),
    "release name too long": (
        {"atlas_release_name": "a" * 31},
        'atlas_release_name: "' + "a" * 31 + "\" is not a lowercase DNS label (a-z, 0-9, '-', at most 30 characters)",
    ),
    "unknown cluster kind": (
        {"atlas_cluster": "kind"},
        "value of atlas_cluster must be one of: minikube, existing, got: kind",
    ),
    "existing cluster without context": (
        {"atlas_cluster": "existing", "atlas_build_images": False, "atlas_kube_context": ""},
        "atlas_kube_context: required when atlas_cluster is existing",
    ),
    "unknown password source": (
        {"atlas_db_password_source": "plaintext"},
        "value of atlas_db_password_source must be one of: generate, vault, existing, got: plaintext",
    ),
    "secret name without the service": (
        {"atlas_db_secret_name": "db-password"},
        'atlas_db_secret_name: "db-password" must contain <service>',
    ),
    "bad entry host": (
        {"atlas_entry_host": "not a host"},
        "atlas_entry_host: 'not a host' is not a DNS name (lowercase, e.g. atlas.local)",
    ),
    # -- the entry (atlas_entry, atlas_gateway) --------------------------------------------------------------
    "unknown entry": (
        {"atlas_entry": "gatway"},
        "atlas_entry: 'gatway' is not an entry; did you mean gateway? (allowed: gateway, ingress)",
    ),
    "entry spelt differently": (
        {"atlas_entry": "Ingress"},
        "atlas_entry: 'Ingress' is not an entry; did you mean ingress? (allowed: gateway, ingress)",
    ),
    "renamed ingress host": (
        {"atlas_ingress_host": "atlas.local"},
        "atlas_ingress_host: renamed to atlas_entry_host",
    ),
    "renamed ingress switch": (
        {"atlas_ingress_enabled": True},
        "atlas_ingress_enabled: renamed to atlas_entry (gateway | ingress: true was atlas_entry: ingress)",
    ),
    "misspelt gateway setting": (
        {"atlas_gateway": {"sectionname": "https"}},
        "atlas_gateway.sectionname: unknown setting; did you mean sectionName?",
    ),
    "misspelt gateway variable": (
        {"atlas_gatway": {"create": False}},
        "atlas_gatway: unknown setting; did you mean atlas_gateway?",
    ),
    "misspelt controller setting": (
        {"atlas_gateway": {"controller": {"chart_verison": "v1.9.0"}}},
        "atlas_gateway.controller.chart_verison: unknown setting; did you mean chart_version?",
    ),
    "controller version range": (
        {"atlas_gateway": {"controller": {"chart_version": "~v1.9"}}},
        "atlas_gateway.controller.chart_version: '~v1.9' is not one chart version",
    ),
    "controller chart not an OCI reference": (
        {"atlas_gateway": {"controller": {"chart_ref": "envoyproxy/gateway-helm"}}},
        "atlas_gateway.controller.chart_ref: 'envoyproxy/gateway-helm' is not an OCI chart (oci://<registry>/<path>)",
    ),
    "controller namespace": (
        {"atlas_gateway": {"controller": {"namespace": "Envoy"}}},
        "atlas_gateway.controller.namespace: 'Envoy' is not a lowercase DNS label",
    ),
    "controller timeout": (
        {"atlas_gateway": {"controller": {"timeout": 5}}},
        "atlas_gateway.controller.timeout: must be an integer from 30 to 3600 seconds, got 5",
    ),
    "gateway port out of range": (
        {"atlas_gateway": {"port": 70000}},
        "atlas_gateway.port: 70000 is greater than the maximum of 65535",
    ),
    "gateway create not a bool": (
        {"atlas_gateway": {"create": "no"}},
        "atlas_gateway.create: 'no' is not of type 'boolean'",
    ),
    "existing gateway without its name": (
        {"atlas_gateway": {"create": False}},
        "atlas_gateway.name: required when atlas_gateway.create is false (the existing Gateway the routes attach to)",
    ),
    "existing gateway's listener": (
        {"atlas_gateway": {"create": False, "name": "shared", "sectionName": "HTTPS"}},
        "atlas_gateway.sectionName: 'HTTPS' is not a listener name",
    ),
    # -- rate limits (per service, chart shape) -------------------------------------------------------------
    "rate limit of zero": (
        _svc("users", rateLimit={"enabled": True, "requests": 0, "unit": "Second"}),
        "atlas_service_overrides.users.rateLimit.requests: 0 is less than the minimum of 1",
    ),
    "rate limit unit": (
        _svc("projects", rateLimit={"unit": "Seconds"}),
        "atlas_service_overrides.projects.rateLimit.unit: 'Seconds' is not one of ['Second', 'Minute', 'Hour', 'Day']",
    ),
    "rate limit not a number": (
        {"atlas_env_service_defaults": {"rateLimit": {"requests": "lots"}}},
        "atlas_env_service_defaults.rateLimit.requests (for auth, projects, users): 'lots' is not of type 'integer'",
    ),
    "misspelt rate limit key": (
        _svc("auth", rateLimit={"request": 5}),
        "atlas_service_overrides.auth.rateLimit.request: unknown setting; did you mean requests?",
    ),
    # -- tokens (atlas_auth_*, the profiles' tokens_required) ------------------------------------------------
    "tokens required without anyone to issue them": (
        {"atlas_profile": "users-only", "atlas_auth_required": True},
        "atlas_auth_required: tokens are required, but nobody issues them: add auth to"
        " atlas_profiles.users-only.services, or set atlas_auth_issuer to an external issuer",
    ),
    "a profile requiring tokens without auth": (
        {
            "atlas_profiles": {"mine": {"services": ["users"], "persistence": True, "tokens_required": True}},
            "atlas_profile": "mine",
        },
        "atlas_profiles.mine.tokens_required: tokens are required, but nobody issues them",
    ),
    "misspelt profile key": (
        {
            "atlas_profiles": {"mine": {"services": ["users"], "persistence": True, "token_required": True}},
            "atlas_profile": "mine",
        },
        "atlas_profiles.mine.token_required: unknown setting; did you mean tokens_required?",
    ),
    "profile's tokens_required not a bool": (
        {
            "atlas_profiles": {"mine": {"services": ["users"], "persistence": True, "tokens_required": "yes"}},
            "atlas_profile": "mine",
        },
        "tokens_required: true|false (optional, default false)}",
    ),
    "auth required not a bool": (
        {"atlas_auth_required": "always"},
        "atlas_auth_required: must be true, false or null (follow the profile), got 'always'",
    ),
    "issuer not an http URL": (
        {"atlas_auth_issuer": "ftp://id.example.com"},
        "atlas_auth_issuer: 'ftp://id.example.com' is not an http(s) URL without query or fragment, or empty",
    ),
    "empty audience": (
        {"atlas_auth_audience": ""},
        "atlas_auth_audience: '' is not one word",
    ),
    "jwks not an http URL": (
        {"atlas_auth_jwks_uri": "keys.example.com/jwks.json"},
        "atlas_auth_jwks_uri: 'keys.example.com/jwks.json' is not an http(s) URL, or empty",
    ),
    "misspelt auth variable": (
        {"atlas_auth_requried": True},
        "atlas_auth_requried: unknown setting; did you mean atlas_auth_required?",
    ),
    "signing key Secret name": (
        {"atlas_auth_key_secret_name": "Signing_Key"},  # pragma: allowlist secret - a bad Secret name
        "atlas_auth_key_secret_name: 'Signing_Key' is not a Secret name",  # pragma: allowlist secret
    ),
    "signing key file in the settings": (
        _svc("auth", secretFiles=[{"env": "ATLAS_AUTH_SIGNING_KEY_FILE", "secretName": "mine", "key": "k.pem"}]),
        "atlas_service_overrides.auth.secretFiles: set by the playbooks (the signing key's Secret: name it with"
        " atlas_auth_key_secret_name)",
    ),
    "overrides not a mapping": (
        {"atlas_service_overrides": ["users"]},
        "argument 'atlas_service_overrides' is of type list",
    ),
}


def test_every_problem_is_reported_at_once(tmp_path):
    """Three mistakes in one run: all three are named, so one fix-and-rerun round is enough."""
    overrides = {"users": {"replicaCont": 2, "config": {"workers": 0}}, "projects": {"config": {"logLevel": "LOUD"}}}
    run = run_playbook(RENDER, "dev", {"atlas_service_overrides": overrides, "atlas_build_dir": str(tmp_path / "b")})

    assert run.rc != 0
    [message] = [m for m in run.failure_messages() if m.startswith("Invalid settings:")]
    assert "atlas_service_overrides.users.replicaCont: unknown setting; did you mean replicaCount?" in message
    assert "atlas_service_overrides.users.config.workers: 0 is less than the minimum of 1" in message
    assert "atlas_service_overrides.projects.config.logLevel: 'LOUD' is not one of" in message


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_setting_stops_render_with_a_clear_message(case, tmp_path):
    overrides, expected = CASES[case]
    build = tmp_path / "build"
    run = run_playbook(RENDER, "dev", {**overrides, "atlas_build_dir": str(build)})

    assert run.rc != 0, f"{case}: render.yml accepted the bad input"
    messages = "\n".join(run.failure_messages())
    assert expected in messages, f"{case}: expected {expected!r} in:\n{messages}"
    # Validation comes first: nothing was written.
    assert not build.exists()


def test_missing_required_setting_in_an_inventory_is_named(tmp_path):
    """A bad inventory: atlas_env set to null (a missing value) is refused by the argument spec."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    with open(os.path.join(REPO_ROOT, "inventories", "dev", "hosts.yml")) as src:
        (inventory / "hosts.yml").write_text(src.read())
    (inventory / "group_vars" / "atlas.yml").write_text("atlas_env:\natlas_profile: full\n")

    run = run_playbook(RENDER, inventory_path=str(inventory), extra_vars={"atlas_build_dir": str(tmp_path / "b")})

    assert run.rc != 0
    messages = "\n".join(run.failure_messages())
    assert "atlas_env" in messages, messages
