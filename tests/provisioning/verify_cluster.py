"""A release as the verify role finds it on a cluster, for tests/provisioning/test_verify_*.py: the profile's
Deployments rolled out, a Ready pod per service, and what each pod answers inside (exec handlers standing in for the
services' own answers: the /readyz and /db-status JSON of atlas_common's probes, auth's create-client output and
token endpoint, each API's 200/401). The services themselves answering so is proved in tests/services (real
processes) and, on a cluster, by Molecule's cluster mode."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

import yaml

from tests.provisioning.ansible_run import REPO_ROOT
from tests.support.kube_api import ExecStdin, KubeApi

NS = "atlas"
READY = json.dumps({"status": "ready"}).encode()
CONNECTED = json.dumps({"connected": True, "server_version": "17.6", "pool": {"size": 4}}).encode()

with open(f"{REPO_ROOT}/group_vars/all/profiles.yml") as _fh:
    PROFILES = yaml.safe_load(_fh)["atlas_profiles"]


def labels(service: str) -> dict:
    return {
        "app.kubernetes.io/name": "atlas",
        "app.kubernetes.io/instance": "atlas",
        "app.kubernetes.io/component": service,
    }


def probes(db_status: bytes = CONNECTED):
    """What a service answers to the verify role's probe commands (python -c '... urlopen(<path>) ...')."""

    def handler(command: list[str]):
        script = command[-1]
        if "/readyz" in script:
            return READY, b"", 0
        if "/db-status" in script:
            return db_status, b"", 0
        return b"", b"unexpected command", 1

    return handler


@dataclass
class Auth:
    """auth inside its pod: `python -m auth create-client` prints a new client (services/auth/auth/commands.py);
    the token script's POST /oauth/token answers a token for a known client, exit 3 (401) otherwise; each API's call
    script prints the statuses the test sets (200 with the token, 401 without by default)."""

    clients: dict[str, str] = field(default_factory=dict)  # client_id -> secret
    created: list[list[str]] = field(default_factory=list)  # create-client command lines
    stdin_seen: list[bytes] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    answers: dict[str, dict] = field(default_factory=dict)  # service -> {"token": 200, "none": 401}

    def auth_pod(self, command: list[str], stdin: ExecStdin):
        if command[:3] == ["python", "-m", "auth"] and command[3] == "create-client":
            client_id, secret = secrets.token_urlsafe(18), secrets.token_urlsafe(32)
            self.clients[client_id] = secret
            self.created.append(command)
            scopes = command[command.index("--scopes") + 1].split()
            return json.dumps({"client_id": client_id, "client_secret": secret, "scopes": scopes}) + "\n", b"", 0
        if command[:2] == ["python", "-c"] and "/oauth/token" in command[2]:
            sent = stdin.read()
            self.stdin_seen.append(sent)
            client = json.loads(sent.decode().splitlines()[0])
            if self.clients.get(client["client_id"]) != client["client_secret"]:
                return b"", b'POST /oauth/token: 401 {"error": "invalid_client"}', 3
            token = "eyJ." + secrets.token_urlsafe(24)
            self.tokens.append(token)
            return token, b"", 0
        return probes()(command)

    def api_pod(self, service: str):
        def handler(command: list[str], stdin: ExecStdin):
            if command[:2] == ["python", "-c"] and "Bearer" in command[2]:
                sent = stdin.read().decode().strip()
                self.stdin_seen.append(sent.encode())
                answer = self.answers.get(service, {"token": 200, "none": 401})
                good = sent in self.tokens
                return json.dumps({"token": answer["token"] if good else 401, "none": answer["none"]}), b"", 0
            return probes()(command)

        return handler


def release(api: KubeApi, profile: str = "full", auth: Auth | None = None) -> list[str]:
    """The profile's services rolled out, one Ready pod each (atlas-<service>-0) answering as above."""
    services = PROFILES[profile]["services"]
    api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    for service in services:
        api.add(KubeApi.deployment(f"atlas-{service}", NS, replicas=1, labels=labels(service)))
        api.add(KubeApi.pod(f"atlas-{service}-0", NS, labels=labels(service), containers=[service]))
        if auth is None:
            api.on_exec(NS, f"atlas-{service}-0", service, probes())
        elif service == "auth":
            api.on_exec(NS, "atlas-auth-0", "auth", auth.auth_pod, stdin=True)
        else:
            api.on_exec(NS, f"atlas-{service}-0", service, auth.api_pod(service), stdin=True)
    return services
