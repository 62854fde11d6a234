"""playbooks/verify.yml with auth deployed and tokens required (profile full), and with the Gateway API entry:
a verification client created once (its secret kept like a password), a token from auth, each API opened by it and
refused without it; the routes and policies accepted by the gateway; how to get a first token, printed.

Real: ansible-playbook, the settings and verify roles (with their module atlas_pod_exec: an exec session with
stdin, the kubernetes client's stream()), kubernetes.core 6.2.0's k8s_info and k8s_exec. Stand-ins: the Kubernetes
API server (tests/support/kube_api.py, with the Gateway API and Envoy Gateway kinds: gateway_crds.py) and what the
pods answer inside (tests/provisioning/verify_cluster.py). What only a cluster shows: auth and the services
answering so, and the gateway itself (401, 429): molecule/shared/tests/test_cluster_gateway.py.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests.provisioning.ansible_run import PlaybookRun, run_playbook
from tests.provisioning.gateway_crds import condition, serving_gateway_crds
from tests.provisioning.verify_cluster import NS, Auth, labels, release
from tests.support.kube_api import KubeApi

pytestmark = [pytest.mark.logic, pytest.mark.slow]

SCOPES = "projects:read users:read"  # read, for every service of the chart but the issuer


def _verify(api: KubeApi, tmp_path, *args: str, **extra) -> PlaybookRun:
    env = {"K8S_AUTH_KUBECONFIG": api.kubeconfig(tmp_path / "kubeconfig", context="atlas-dev")}
    extra = {"atlas_credentials_dir": str(tmp_path / "cred"), "verify_ready_timeout": 10, **extra}
    return run_playbook("playbooks/verify.yml", "dev", extra, env=env, args=list(args))


def _accepted(kind: str, name: str) -> dict:
    field, conditions = (
        ("parents", ["Accepted", "ResolvedRefs"]) if kind == "HTTPRoute" else ("ancestors", ["Accepted"])
    )
    group = "gateway.networking.k8s.io/v1" if kind == "HTTPRoute" else "gateway.envoyproxy.io/v1alpha1"
    ref = "parentRef" if kind == "HTTPRoute" else "ancestorRef"
    return {
        "apiVersion": group,
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "labels": labels(name.removeprefix("atlas-"))},
        "spec": {},
        "status": {
            field: [
                {
                    ref: {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "atlas"},
                    "controllerName": "gateway.envoyproxy.io/gatewayclass-controller",
                    "conditions": [condition(c, reason=c) for c in conditions],
                }
            ]
        },
    }


def _entry(api: KubeApi, services: list[str]) -> None:
    """What the chart rendered for the profile (tests/provisioning/test_render.py), accepted by the gateway."""
    for service in services:
        api.add(_accepted("HTTPRoute", f"atlas-{service}"))
        api.add(_accepted("BackendTrafficPolicy", f"atlas-{service}"))
        if service != "auth":
            api.add(_accepted("SecurityPolicy", f"atlas-{service}"))


def _exec_commands(api: KubeApi) -> list[str]:
    return [" ".join(r.query.get("command", [])) for r in api.requests if r.path.endswith("/exec")]


def test_a_client_is_created_once_and_its_token_opens_each_api(tmp_path):
    auth = Auth()
    with KubeApi() as api, serving_gateway_crds():
        _entry(api, release(api, "full", auth))
        first = _verify(api, tmp_path)
        first_commands = _exec_commands(api)
        api.clear_requests()
        again = _verify(api, tmp_path)
        again_commands = _exec_commands(api)
        assert api.errors == [], api.errors[0]

    assert first.rc == 0, first.failure_messages()
    assert again.rc == 0 and again.changed() == 0, again.failure_messages()
    # One client, read-only, created once; kept in the credentials file (0600) like a password.
    assert [c for c in auth.created] == [
        ["python", "-m", "auth", "create-client", "--name", "atlas-verify", "--scopes", SCOPES]
    ]
    stored = json.loads((tmp_path / "cred" / "verify-client.json").read_text())
    assert auth.clients == {stored["client_id"]: stored["client_secret"]}
    assert stat.S_IMODE(os.stat(tmp_path / "cred" / "verify-client.json").st_mode) == 0o600
    assert [r["changed"] for r in first.results("verify : Keep the verification client")] == [True]
    # The secret and the tokens went over stdin, never into an exec request's command line, nor into the output.
    for commands in (first_commands, again_commands):
        assert not any(stored["client_secret"] in c or any(t in c for t in auth.tokens) for c in commands)
    for run in (first, again):
        assert stored["client_secret"] not in str(run.report) and stored["client_secret"] not in run.stderr
        assert not any(t in str(run.report) for t in auth.tokens)
    assert any(stored["client_secret"].encode() in seen for seen in auth.stdin_seen)
    # Each API that checks tokens was called with it and without it.
    calls = [r for r in first.results("verify : Call with the token and without, users")] + [
        r for r in first.results("verify : Call with the token and without, projects")
    ]
    assert len(calls) == 2
    assert first.results("verify : Check the answers of users")[0].get("failed") is not True


def test_a_client_auth_forgot_is_replaced(tmp_path):
    """ephemeral: auth's database is an emptyDir; after it restarts the stored client is unknown (401)."""
    auth = Auth()
    with KubeApi() as api, serving_gateway_crds():
        _entry(api, release(api, "full", auth))
        assert _verify(api, tmp_path).rc == 0
        auth.clients.clear()  # the database came back empty
        run = _verify(api, tmp_path)
        assert api.errors == [], api.errors[0]

    assert run.rc == 0, run.failure_messages()
    assert len(auth.created) == 2
    stored = json.loads((tmp_path / "cred" / "verify-client.json").read_text())
    assert stored["client_id"] in auth.clients


def test_a_service_that_lets_a_call_without_token_through_fails_naming_why(tmp_path):
    auth = Auth(answers={"projects": {"token": 200, "none": 200}})
    with KubeApi() as api, serving_gateway_crds():
        _entry(api, release(api, "full", auth))
        run = _verify(api, tmp_path)
        assert api.errors == [], api.errors[0]

    assert run.rc != 0
    [message] = [m for m in run.failure_messages() if m.startswith("projects:")]
    assert message == (
        "projects: GET /api/v1/projects answered 200 without a token, though tokens are required "
        "(atlas_profiles.full.tokens_required; 401 expected)"
    )


def test_routes_the_gateway_has_not_accepted_fail_naming_them(tmp_path):
    auth = Auth()
    with KubeApi() as api, serving_gateway_crds():
        services = release(api, "full", auth)
        _entry(api, services)
        route = _accepted("HTTPRoute", "atlas-users")
        route["status"]["parents"][0]["conditions"][1] = condition(
            "ResolvedRefs", "False", "BackendNotFound", "Service atlas/atlas-users not found"
        )
        api.add(route)
        run = _verify(api, tmp_path)
        assert api.errors == [], api.errors[0]

    assert run.rc != 0
    [message] = [m for m in run.failure_messages() if m.startswith("the gateway")]
    assert message.startswith(
        "the gateway has not accepted the entry within 10s: HTTPRoute/atlas-users: ResolvedRefs is False"
    )
    assert "BackendNotFound: Service atlas/atlas-users not found" in message


def test_check_mode_creates_no_client(tmp_path):
    auth = Auth()
    with KubeApi() as api, serving_gateway_crds():
        _entry(api, release(api, "full", auth))
        run = _verify(api, tmp_path, "--check")
        assert api.errors == [], api.errors[0]

    assert run.rc == 0, run.failure_messages()
    assert auth.created == [] and not (tmp_path / "cred").exists()
    [said] = run.results("verify : Say why the token checks are skipped")
    assert said["msg"].startswith("check mode: there is no verification client yet")


def test_without_a_vaulted_client_the_token_checks_are_skipped_saying_so(tmp_path):
    auth = Auth()
    with KubeApi() as api, serving_gateway_crds():
        _entry(api, release(api, "full", auth))
        run = _verify(api, tmp_path, atlas_db_password_source="existing")
        assert api.errors == [], api.errors[0]

    assert run.rc == 0, run.failure_messages()
    assert auth.created == [] and auth.tokens == []
    [said] = run.results("verify : Say why the token checks are skipped")
    assert said["msg"].startswith(
        "no verification client (atlas_auth_verify_client, from vault_atlas_auth_verify_client)"
    )


def test_the_end_says_how_to_get_a_first_token(tmp_path):
    auth = Auth()
    with KubeApi() as api, serving_gateway_crds():
        _entry(api, release(api, "full", auth))
        run = _verify(api, tmp_path)
        assert api.errors == [], api.errors[0]

    assert run.rc == 0, run.failure_messages()
    [said] = run.results("Say how to reach Atlas and get a token")
    lines = said["msg"].splitlines()
    assert lines[1].startswith(
        "kubectl --context atlas-dev -n envoy-gateway-system port-forward $(kubectl --context atlas-dev"
    )
    assert lines[1].endswith("gateway.envoyproxy.io/owning-gateway-name=atlas) 8080:80")
    assert lines[3] == (
        "kubectl --context atlas-dev -n atlas exec deploy/atlas-auth -c auth -- python -m auth create-client --name me "
        '--scopes "projects:read projects:write users:read users:write"'
    )
    assert "http://127.0.0.1:8080/oauth/token" in lines[5] and "-H 'Host: atlas.local'" in lines[5]
    assert (
        lines[7]
        == "curl -s -H 'Host: atlas.local' -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8080/api/v1/users"
    )
