"""auth's signing key: generated once and kept like the database passwords, or from the vault, or a Secret someone
else made; put into the Secret the chart mounts (auth.secretFiles[0].secretName); a second run changes nothing,
check mode writes nothing, a changed key restarts auth's pods.

Real: ansible-playbook with playbooks/deploy.yml (settings, values and release roles), community.crypto's
openssl_privatekey (PyPI's ansible 12), kubernetes.core 6.2.0's k8s and k8s_info, the real helm (the values role's
render). Stand-in: the Kubernetes API server (tests/support/kube_api.py). As in test_secret_names.py, helm's own
install against the stand-in is not part of this: each run stops at "Install or upgrade the chart". The gateway
controller and the monitoring stack are off (their charts are out of reach): tests/provisioning/test_gateway.py.
"""

from __future__ import annotations

import base64
import os
import stat

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.provisioning.ansible_run import REPO_ROOT, PlaybookRun, run_playbook
from tests.support.kube_api import KubeApi

pytestmark = pytest.mark.logic

DEPLOY = "playbooks/deploy.yml"
SECRET = "atlas-auth-signing-key"  # pragma: allowlist secret - a Secret's name
KEY = "signing-key.pem"  # charts/atlas/values.yaml auth.secretFiles[0].key
# Only the Atlas release: the gateway controller's and the monitoring stack's charts are out of reach here.
OFF = {"gateway_enabled": False, "atlas_observability": {"enabled": False}}


def _run(api: KubeApi, tmp_path, *args: str, inventory: str = "dev", **extra) -> PlaybookRun:
    env = {"K8S_AUTH_KUBECONFIG": api.kubeconfig(tmp_path / "kubeconfig", context="atlas-dev")}
    extra = {
        "atlas_build_dir": str(tmp_path / "build"),
        "atlas_credentials_dir": str(tmp_path / "cred"),
        **OFF,
        **extra,
    }
    return run_playbook(DEPLOY, inventory, extra, env=env, args=list(args))


def _secret_pem(api: KubeApi, name: str = SECRET) -> str:
    secret = api.get("Secret", "atlas", name)
    assert secret is not None, f"no Secret {name}"
    return base64.b64decode(secret["data"][KEY]).decode()


def _pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _stopped_at_the_chart(run: PlaybookRun) -> None:
    """Everything before helm ran; helm's own install against the stand-in is out of scope (see above)."""
    assert run.rc != 0
    assert "release : Install or upgrade the chart" in run.tasks_run(), run.failure_messages()
    assert run.results("release : Install or upgrade the chart")[0].get("failed")


def test_generated_once_into_the_credentials_and_its_secret_never_shown(tmp_path):
    with KubeApi() as api:
        first = _run(api, tmp_path)
        pem = _secret_pem(api)
        again = _run(api, tmp_path)
        assert _secret_pem(api) == pem
        assert api.errors == [], api.errors[0]

    key_file = tmp_path / "cred" / "auth-signing-key.pem"
    for run in (first, again):
        _stopped_at_the_chart(run)
        assert pem.strip() not in run.stderr and pem.strip() not in str(run.report)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert key_file.read_text() == pem
    # ECDSA P-256 in PKCS#8, what auth signs ES256 with (services/auth/auth/signing.py accepts it).
    key = serialization.load_pem_private_key(pem.encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")  # pragma: allowlist secret - a PEM header
    # The second run kept the file and the Secret as they were: no new key, no restart.
    assert [r.get("changed") for r in again.results("release : Generate the signing key once")] == [False]
    assert [r.get("changed") for r in again.results("release : Create the signing key Secret")] == [False]
    assert again.results("release : Restart auth's pods for the changed signing key")[0].get("skipped")
    # The chart mounts that Secret: its name is in the values, the key itself is not.
    values = yaml.safe_load((tmp_path / "build" / "values.yaml").read_text())
    assert values["auth"]["secretFiles"] == [{"env": "ATLAS_AUTH_SIGNING_KEY_FILE", "secretName": SECRET, "key": KEY}]
    assert "PRIVATE KEY" not in (tmp_path / "build" / "values.yaml").read_text()


def test_two_keys_during_a_rotation_reach_the_secret_and_restart_auth(tmp_path):
    """docs/operations.md: the new key is added to the file (the first signs, both are published); the next deploy
    puts both in the Secret and restarts auth's pods, rolling, so they read it. The file is never regenerated."""
    cred = tmp_path / "cred"
    cred.mkdir(mode=0o700)
    old, new = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    (cred / "auth-signing-key.pem").write_text(_pem(old))
    (cred / "auth-signing-key.pem").chmod(0o600)
    labels = {"app.kubernetes.io/instance": "atlas", "app.kubernetes.io/component": "auth"}
    with KubeApi() as api:
        api.add(KubeApi.deployment("atlas-auth", "atlas", labels=labels))

        def rolled_out(_: int) -> dict:  # the Deployment controller: the new generation observed and available
            current = api.get("Deployment", "atlas", "atlas-auth")
            current["status"]["observedGeneration"] = current["metadata"]["generation"]
            return current

        api.on_get("Deployment", "atlas", "atlas-auth", rolled_out)
        first = _run(api, tmp_path)
        assert _secret_pem(api) == _pem(old)
        (cred / "auth-signing-key.pem").write_text(_pem(new) + _pem(old))
        rotated = _run(api, tmp_path)
        both = _secret_pem(api)
        deployment = api.get("Deployment", "atlas", "atlas-auth")
        assert api.errors == [], api.errors[0]

    _stopped_at_the_chart(first)
    _stopped_at_the_chart(rotated)
    assert both == _pem(new) + _pem(old)
    assert (cred / "auth-signing-key.pem").read_text() == _pem(new) + _pem(old)  # the module left the file alone
    [restart] = rotated.results("release : Restart auth's pods for the changed signing key")
    assert restart.get("changed") is True
    assert "kubectl.kubernetes.io/restartedAt" in deployment["spec"]["template"]["metadata"]["annotations"]
    assert first.results("release : Restart auth's pods for the changed signing key")[0].get("skipped")


def test_check_mode_generates_no_key_and_writes_nothing(tmp_path):
    with KubeApi() as api:
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "atlas"}})
        run = _run(api, tmp_path, "--check")
        writes = [(r.method, r.path) for r in api.requests if r.method != "GET" and r.q("dryRun") != "All"]
        assert api.errors == [], api.errors[0]

    assert run.rc == 0, run.failure_messages()
    assert writes == []
    assert not (tmp_path / "cred").exists()
    [said] = run.results("release : Say what check mode would generate")
    assert said["changed"] is True and said["msg"].startswith("check mode: a real run generates auth's signing key")
    assert run.results("release : Generate the signing key once")[0].get("skipped")


def test_from_the_vault_in_prod(tmp_path):
    key = _pem(ec.generate_private_key(ec.SECP256R1()))
    with open(f"{REPO_ROOT}/inventories/prod/group_vars/all/vault.yml.example") as fh:
        vault = yaml.safe_load(fh)
    vault["vault_atlas_db_passwords"] = {s: "p" * 16 + s for s in ("auth", "users", "projects")}
    vault["vault_atlas_auth_signing_key"] = key
    with KubeApi() as api:
        run = _run(api, tmp_path, inventory="prod", atlas_kube_context="atlas-dev", **vault)
        pem = _secret_pem(api)
        assert api.errors == [], api.errors[0]

    _stopped_at_the_chart(run)
    assert pem == key
    assert not (tmp_path / "cred").exists(), "the vault source keeps nothing on disk"


def test_the_vault_example_placeholder_stops_before_the_cluster(tmp_path):
    with open(f"{REPO_ROOT}/inventories/prod/group_vars/all/vault.yml.example") as fh:
        vault = yaml.safe_load(fh)
    vault["vault_atlas_db_passwords"] = {s: "p" * 16 + s for s in ("auth", "users", "projects")}
    run = run_playbook(DEPLOY, "prod", {**vault, **OFF, "atlas_build_dir": str(tmp_path)})

    assert run.rc != 0
    [message] = run.failure_messages()
    assert message.startswith("atlas_auth_signing_key: missing, still the example placeholder or not a PEM private key")
    assert "vault_atlas_auth_signing_key" in message
    assert not [t for t in run.tasks_run() if "Ask the cluster" in t]


def test_an_existing_secret_must_be_there(tmp_path):
    with KubeApi() as api:
        password = {"password": "c2VjcmV0"}  # pragma: allowlist secret - base64 of "secret", a test Secret
        for service in ("auth", "users", "projects"):
            metadata = {"name": f"atlas-{service}-db", "namespace": "atlas"}
            api.add({"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": password})
        run = _run(api, tmp_path, atlas_db_password_source="existing")
        assert api.errors == [], api.errors[0]

    assert run.rc != 0
    assert run.results("release : Check the existing signing key Secret")[0].get("failed")
    assert "release : Install or upgrade the chart" not in run.tasks_run()


def test_an_overridden_secret_name_is_created_and_mounted(tmp_path):
    with KubeApi() as api:
        run = _run(api, tmp_path, atlas_auth_key_secret_name="tokens-key")
        _secret_pem(api, "tokens-key")
        assert api.get("Secret", "atlas", SECRET) is None
        assert api.errors == [], api.errors[0]

    _stopped_at_the_chart(run)
    values = yaml.safe_load((tmp_path / "build" / "values.yaml").read_text())
    assert values["auth"]["secretFiles"][0]["secretName"] == "tokens-key"  # pragma: allowlist secret - a name


def test_no_key_without_auth(tmp_path):
    with KubeApi() as api:
        run = _run(api, tmp_path, atlas_profile="users-only")
        secrets = [s["metadata"]["name"] for s in api.objects("Secret", "atlas")]
        assert api.errors == [], api.errors[0]

    _stopped_at_the_chart(run)
    assert secrets == ["atlas-users-db"]
    assert not (tmp_path / "cred" / "auth-signing-key.pem").exists()
