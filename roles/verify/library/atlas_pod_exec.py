"""atlas_pod_exec: run a command in a pod's container with something on its stdin, through the Kubernetes API.

kubernetes.core.k8s_exec (6.2.0) sends no stdin: whatever the command needs goes into its command line, which is
part of the exec request's URL (?command=...) and so of the API server's audit log. The verify role's secrets (a
client secret, a bearer token) go on the exec session's stdin instead, like `kubectl exec -i`.

The session is the one k8s_exec opens (kubernetes.core 6.2.0 plugins/modules/k8s_exec.py: the kubernetes client's
stream() over connect_get_namespaced_pod_exec, the same auth options, get_api_client), with stdin=True:
kubernetes 37.0.2 stream/ws_client.py write_stdin() sends the data, close_channel(0) ends stdin (the v5.channel.k8s.io
close signal; an API server older than v1.30 speaks v4, which has none, so the commands read one line instead of
waiting for the end of input), then the output is read until the server closes the session, and the exit status comes
from channel 3 as k8s_exec reads it. Never changed: it only runs what the caller says (changed_when decides).
"""

from __future__ import annotations

import copy

DOCUMENTATION = r"""
module: atlas_pod_exec
short_description: Run a command in a pod with data on its stdin (kubernetes.core.k8s_exec has no stdin)
options:
  namespace: {type: str, required: true, description: The pod's namespace.}
  pod: {type: str, required: true, description: The pod.}
  container: {type: str, required: true, description: The container.}
  argv: {type: list, elements: str, required: true, description: The command, one argument per item (no shell).}
  stdin: {type: str, default: "", description: What the command reads on its stdin (kept out of every log).}
  timeout: {type: int, default: 60, description: Seconds the command may take.}
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
"""

RETURN = r"""
stdout: {description: The command's stdout, type: str, returned: always}
stderr: {description: The command's stderr, type: str, returned: always}
rc: {description: The command's exit status, type: int, returned: always}
"""

import time  # noqa: E402

from ansible.module_utils.common.text.converters import to_native  # noqa: E402
from ansible_collections.kubernetes.core.plugins.module_utils.ansiblemodule import AnsibleModule  # noqa: E402
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC  # noqa: E402
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client  # noqa: E402
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule  # noqa: E402
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException  # noqa: E402

try:
    import yaml
    from kubernetes.client.api import core_v1_api
    from kubernetes.stream import stream
except ImportError:  # pragma: no cover - AnsibleK8SModule reports the missing client
    pass


def argspec() -> dict:
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(
        namespace=dict(type="str", required=True),
        pod=dict(type="str", required=True),
        container=dict(type="str", required=True),
        argv=dict(type="list", elements="str", required=True),
        stdin=dict(type="str", default="", no_log=True),
        timeout=dict(type="int", default=60),
    )
    return spec


def run(module, client) -> dict:
    api = core_v1_api.CoreV1Api(client.client)
    params = module.params
    try:
        session = stream(
            api.connect_get_namespaced_pod_exec,
            params["pod"],
            params["namespace"],
            container=params["container"],
            command=params["argv"],
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            _preload_content=False,
        )
    except Exception as exc:  # the client raises ApiException, or websocket errors, for a refused upgrade
        module.fail_json(msg=f"Failed to execute on pod {params['pod']} due to : {to_native(exc)}")
    stdout, stderr = [], []
    try:
        if params["stdin"]:
            session.write_stdin(params["stdin"])
        session.close_channel(0)  # the end of stdin (v5 only; a no-op on v4)
        deadline = time.monotonic() + params["timeout"]
        while session.is_open():
            if time.monotonic() > deadline:
                module.fail_json(msg=f"{params['argv'][0]} in pod {params['pod']} took more than {params['timeout']}s")
            session.update(timeout=1)
            if session.peek_stdout():
                stdout.append(session.read_stdout())
            if session.peek_stderr():
                stderr.append(session.read_stderr())
        status = yaml.safe_load(session.read_channel(3))
    finally:
        session.close()
    if not isinstance(status, dict):
        module.fail_json(msg=f"pod {params['pod']}: the session ended without an exit status")
    rc = 0 if status.get("status") == "Success" else int(status["details"]["causes"][0]["message"])
    return {"changed": False, "stdout": "".join(stdout), "stderr": "".join(stderr), "rc": rc}


def main() -> None:
    module = AnsibleK8SModule(
        module_class=AnsibleModule, check_pyyaml=False, argument_spec=argspec(), supports_check_mode=True
    )
    try:
        client = get_api_client(module)
        module.exit_json(**run(module, client.client))
    except CoreException as exc:
        module.fail_from_exception(exc)


if __name__ == "__main__":
    main()
