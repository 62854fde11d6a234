"""The live release, seen through the Kubernetes API: clients for the scenario's cluster, HTTP to a
pod through a port-forward (no Ingress, DNS or NodePort needed), commands run inside a pod, and tokens from
the auth service (a client made with `python -m auth create-client`, its token from POST /oauth/token)."""

from __future__ import annotations

import base64
import http.client
import json
import time
from dataclasses import dataclass

from atlas_mode import Mode
from kubernetes import client, config
from kubernetes.stream import portforward, stream

from tests.support.chart import NAMESPACE, RELEASE
from tests.support.postgres import wait_until

APP_PORT = 8080


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: object  # parsed JSON, or the text when the answer is not JSON


class Cluster:
    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        # Minikube writes its context (named after the profile) into the default kubeconfig.
        self.kubeconfig = mode.kubeconfig or None
        self.context = mode.context or mode.minikube_profile or None
        api = config.new_client_from_config(config_file=self.kubeconfig, context=self.context)
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)

    # -- pods ------------------------------------------------------------------------------------
    def pods(self, component: str) -> list:
        selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
        return self.core.list_namespaced_pod(NAMESPACE, label_selector=selector).items

    @staticmethod
    def is_ready(pod) -> bool:
        if pod.metadata.deletion_timestamp is not None or pod.status.phase != "Running":
            return False
        return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])

    def ready_pod(self, component: str, timeout: float = 180, not_uid: str | None = None):
        """A Ready pod of the component (optionally: not the one with this uid), waiting for one."""
        found = []

        def look() -> bool:
            found[:] = [p for p in self.pods(component) if self.is_ready(p) and p.metadata.uid != not_uid]
            return bool(found)

        wait_until(look, timeout=timeout, interval=2)
        return found[0]

    # -- HTTP through a port-forward -------------------------------------------------------------
    def http(
        self,
        component: str,
        method: str,
        path: str,
        body: dict | None = None,
        timeout: float = 15,
        token: str | None = None,
    ) -> Reply:
        """One request to a Ready pod of the component, with a bearer token when one is given."""
        pod = self.ready_pod(component)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.forward(pod.metadata.name, NAMESPACE, APP_PORT, method, path, body, headers, timeout)

    def forward(
        self,
        pod_name: str,
        namespace: str,
        port: int,
        method: str,
        path: str,
        body: dict | bytes | None = None,
        headers: dict | None = None,
        timeout: float = 15,
    ) -> Reply:
        """One HTTP request to a pod's port over a port-forward (a JSON body for a dict, as is for bytes)."""
        forward = portforward(self.core.connect_get_namespaced_pod_portforward, pod_name, namespace, ports=str(port))
        conn = http.client.HTTPConnection("localhost", port, timeout=timeout)
        conn.sock = forward.socket(port)  # talk over the forwarded stream instead of a TCP connect
        conn.sock.settimeout(timeout)
        try:
            headers = {"Connection": "close", "Accept": "application/json", **(headers or {})}
            payload = None
            if isinstance(body, bytes):
                payload = body
            elif body is not None:
                payload = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read().decode()
            try:
                parsed: object = json.loads(raw)
            except ValueError:
                parsed = raw
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed)
        finally:
            conn.close()
            forward.close()

    # -- commands inside a pod -------------------------------------------------------------------
    def exec(self, pod_name: str, container: str, command: list[str], timeout: float = 60) -> tuple[int, str, str]:
        ws = stream(
            self.core.connect_get_namespaced_pod_exec,
            pod_name,
            NAMESPACE,
            container=container,
            command=command,
            stdin=False,
            stdout=True,
            stderr=True,
            tty=False,
            _preload_content=False,
        )
        ws.run_forever(timeout=timeout)
        out, err = ws.read_stdout(), ws.read_stderr()
        code = ws.returncode
        ws.close()
        return code, out, err

    def psql(self, service: str, sql: str) -> tuple[int, str, str]:
        """Run SQL as the service's database owner inside its PostgreSQL pod (socket, password file)."""
        pod = self.ready_pod(f"{service}-postgresql")
        script = (
            'PGPASSWORD="$(cat /run/secrets/postgresql/password)" '
            f'psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U {service} -d {service} -tAc "$1"'
        )
        return self.exec(pod.metadata.name, "postgresql", ["sh", "-c", script, "psql", sql])


class Tokens:
    """Bearer tokens for the scenario's tests: one client (created once, in an auth pod, with the scopes asked), a
    token from auth's POST /oauth/token through a port-forward (client credentials, HTTP Basic), renewed before it
    expires (expires_in)."""

    def __init__(self, cluster: Cluster, issuer: str, scopes: list[str], name: str = "molecule-tests") -> None:
        self.cluster, self.issuer, self.scopes, self.name = cluster, issuer, scopes, name
        self._client: dict | None = None
        self._token, self._until = "", 0.0

    def client(self) -> dict:
        if self._client is None:
            pod = self.cluster.ready_pod(self.issuer).metadata.name
            command = [
                "python",
                "-m",
                self.issuer,
                "create-client",
                "--name",
                self.name,
                "--scopes",
                " ".join(self.scopes),
            ]
            rc, out, err = self.cluster.exec(pod, self.issuer, command)
            assert rc == 0, f"create-client: {err}"
            self._client = json.loads(out)
        return self._client

    def request(self, client: dict | None = None) -> Reply:
        """POST /oauth/token to an auth pod for ``client`` (default: this one's)."""
        client = client or self.client()
        basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
        pod = self.cluster.ready_pod(self.issuer).metadata.name
        headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}
        return self.cluster.forward(
            pod, NAMESPACE, APP_PORT, "POST", "/oauth/token", b"grant_type=client_credentials", headers
        )

    def get(self) -> str:
        if time.monotonic() >= self._until:
            reply = self.request()
            assert reply.status == 200, f"POST /oauth/token: {reply.status} {reply.body}"
            self._token = reply.body["access_token"]
            self._until = time.monotonic() + int(reply.body.get("expires_in", 300)) - 60
        return self._token
