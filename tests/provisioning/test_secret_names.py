"""A database Secret's name is computed once (atlas_db_secret_name) and an override works end to end: the
release role creates the Secret under that name and the chart's pods read it from there.

Real: ansible-playbook with playbooks/deploy.yml (settings, tools, values, release roles), kubernetes.core's
k8s module, the real helm (the values role's `helm template`). Stand-in: the Kubernetes API server
(tests/support/kube_api.py). helm's own install against the stand-in is not part of this: the run is
expected to stop at "Install or upgrade the chart" (the stand-in serves only the kinds the roles use).
"""

from __future__ import annotations

import base64

import pytest
import yaml

from tests.provisioning.ansible_run import run_playbook
from tests.support.kube_api import KubeApi

pytestmark = pytest.mark.logic


def test_an_overridden_secret_name_is_created_and_read_by_the_chart(tmp_path):
    build, credentials = tmp_path / "build", tmp_path / "credentials"
    with KubeApi() as api:
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig", context="atlas-dev")
        extra = {
            "atlas_db_secret_name": "pg-<service>-password",
            "atlas_build_dir": str(build),
            "atlas_credentials_dir": str(credentials),
            # The Atlas release only: the monitoring stack's and the gateway controller's charts come from chart
            # repositories and Docker Hub, out of reach here.
            "atlas_observability": {"enabled": False},
            "gateway_enabled": False,
        }
        run = run_playbook("playbooks/deploy.yml", "dev", extra, env={"K8S_AUTH_KUBECONFIG": kubeconfig})
        secrets = {s["metadata"]["name"]: s for s in api.objects("Secret", "atlas")}
        assert api.errors == [], api.errors[0]

    tasks = run.tasks_run()
    assert "release : Create the database Secrets" in tasks, tasks
    assert {"pg-users-password", "pg-projects-password"} <= set(secrets), sorted(secrets)
    assert not {"atlas-users-db", "atlas-projects-db"} & set(secrets)
    # The password is the generated one, kept in the credentials directory.
    stored = (credentials / "users-db").read_text().strip()
    assert base64.b64decode(secrets["pg-users-password"]["data"]["password"]).decode() == stored

    values = yaml.safe_load((build / "values.yaml").read_text())
    assert values["users"]["postgresql"]["auth"]["existingSecret"] == "pg-users-password"

    # The manifests the same settings render: both the service and its database read that Secret.
    render = run_playbook("playbooks/render.yml", "dev", {**extra, "atlas_build_dir": str(tmp_path / "r")})
    assert render.rc == 0, render.failure_messages()
    docs = [d for d in yaml.safe_load_all((tmp_path / "r" / "manifests.yaml").read_text()) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "atlas-users")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "pg-users-password", "key": "password"} in [e["valueFrom"]["secretKeyRef"] for e in env]
    database = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "atlas-users-postgresql")
    volumes = {v["name"]: v for v in database["spec"]["template"]["spec"]["volumes"]}
    assert volumes["password"]["secret"]["secretName"] == "pg-users-password"
