"""What individual values do to the rendered manifests: passwords, secrets, images, scaling, TLS,
security contexts, probes and the migration step."""

from __future__ import annotations

import base64
import os

import pytest
import yaml

from tests.support.chart import find, of_kind, render, resource_ids, template_raw

VALUES_DIR = os.path.join(os.path.dirname(__file__), "values")


def values_file(name: str) -> list[str]:
    return [os.path.join(VALUES_DIR, name)]


def pod_spec(doc: dict) -> dict:
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def secret_password(manifests: list[dict], name: str) -> str:
    return base64.b64decode(find(manifests, "Secret", name)["data"]["password"]).decode()


# -- passwords ------------------------------------------------------------------------------------


def test_generated_password_is_random_and_fresh_per_template_run() -> None:
    # helm template cannot look up the cluster's Secret, so each run renders a new password;
    # only `helm install/upgrade` keep it (lookup). README.md documents this.

    # template_raw, not the cached render: two real helm runs.
    first, second = ([d for d in yaml.safe_load_all(template_raw()) if d] for _ in range(2))
    one, two = secret_password(first, "atlas-users-postgresql"), secret_password(second, "atlas-users-postgresql")
    assert len(one) == 32 and one.isalnum()
    assert one != two
    assert one != secret_password(first, "atlas-projects-postgresql")


def test_given_password_goes_into_the_secret() -> None:
    manifests = render({"users.postgresql.auth.password": "s3cret-given"})
    assert secret_password(manifests, "atlas-users-postgresql") == "s3cret-given"


def test_existing_secret_is_used_and_none_is_made() -> None:
    manifests = render(values_files=values_file("playbooks.yaml"))
    assert of_kind(manifests, "Secret") == []
    for name in ("users", "projects"):
        deployment = find(manifests, "Deployment", f"atlas-{name}")
        spec = pod_spec(deployment)
        for container in spec["containers"] + spec["initContainers"]:
            assert env_of(container)["PGPASSWORD"] == {"secretKeyRef": {"name": f"atlas-{name}-db", "key": "password"}}
        sts = find(manifests, "StatefulSet", f"atlas-{name}-postgresql")
        (password_volume,) = [v for v in pod_spec(sts)["volumes"] if v["name"] == "password"]
        assert password_volume["secret"]["secretName"] == f"atlas-{name}-db"


def test_chart_secret_feeds_both_the_service_and_its_database() -> None:
    manifests = render()
    spec = pod_spec(find(manifests, "Deployment", "atlas-users"))
    assert env_of(spec["containers"][0])["PGPASSWORD"] == {
        "secretKeyRef": {"name": "atlas-users-postgresql", "key": "password"}
    }
    sts_spec = pod_spec(find(manifests, "StatefulSet", "atlas-users-postgresql"))
    (volume,) = [v for v in sts_spec["volumes"] if v["name"] == "password"]
    assert volume["secret"]["secretName"] == "atlas-users-postgresql"
    assert volume["secret"]["items"] == [{"key": "password", "path": "password"}]
    pg_env = env_of(sts_spec["containers"][0])
    assert pg_env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgresql/password"
    assert (pg_env["POSTGRES_USER"], pg_env["POSTGRES_DB"]) == ("users", "users")
    assert "POSTGRES_PASSWORD" not in pg_env
    # Kept on uninstall, so a kept volume is never orphaned from the password it was initialised with.
    assert find(manifests, "Secret", "atlas-users-postgresql")["metadata"]["annotations"] == {
        "helm.sh/resource-policy": "keep"
    }


def test_external_database_settings_reach_the_service() -> None:
    manifests = render(values_files=values_file("external-databases.yaml"))
    users = find(manifests, "ConfigMap", "atlas-users")["data"]
    assert (users["PGHOST"], users["PGPORT"]) == ("users-db.example.test", "6432")
    projects_env = env_of(pod_spec(find(manifests, "Deployment", "atlas-projects"))["containers"][0])
    assert projects_env["PGPASSWORD"] == {"secretKeyRef": {"name": "projects-db", "key": "pgpass"}}
    egress = find(manifests, "NetworkPolicy", "atlas-users")["spec"]["egress"]
    assert {"ports": [{"protocol": "TCP", "port": 6432}]} in egress


# -- images, scaling, ingress --------------------------------------------------------------------


def test_image_tag_defaults_to_app_version_and_can_be_set() -> None:
    default = pod_spec(find(render(), "Deployment", "atlas-users"))
    assert default["containers"][0]["image"] == "atlas/users:0.1.0"
    tagged = pod_spec(find(render(values_files=values_file("playbooks.yaml")), "Deployment", "atlas-projects"))
    assert {c["image"] for c in tagged["containers"] + tagged["initContainers"]} == {"atlas/projects:8b7e6d5c"}
    sts = pod_spec(find(render(), "StatefulSet", "atlas-users-postgresql"))
    assert sts["containers"][0]["image"] == "postgres:17.6-alpine"


def test_production_shape_adds_hpa_pdb_tls_and_storage_class() -> None:
    manifests = render(values_files=values_file("production.yaml"))
    ids = resource_ids(manifests)
    for name in ("users", "projects"):
        assert ("HorizontalPodAutoscaler", f"atlas-{name}") in ids
        assert ("PodDisruptionBudget", f"atlas-{name}") in ids
        # The autoscaler owns the replica count.
        assert "replicas" not in find(manifests, "Deployment", f"atlas-{name}")["spec"]
    hpa = find(manifests, "HorizontalPodAutoscaler", "atlas-projects")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "atlas-projects"}
    assert hpa["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 80}
    pdb = find(manifests, "PodDisruptionBudget", "atlas-projects")["spec"]
    assert pdb["minAvailable"] == 2
    assert pdb["selector"]["matchLabels"]["app.kubernetes.io/component"] == "projects"
    ingress = find(manifests, "Ingress", "atlas")["spec"]
    assert ingress["tls"] == [{"hosts": ["atlas.example.test"], "secretName": "atlas-tls"}]
    claim = find(manifests, "StatefulSet", "atlas-users-postgresql")["spec"]["volumeClaimTemplates"][0]["spec"]
    assert (claim["storageClassName"], claim["resources"]["requests"]["storage"]) == ("fast-ssd", "20Gi")


def test_replica_count_without_autoscaling() -> None:
    manifests = render({"users.replicaCount": 3})
    assert find(manifests, "Deployment", "atlas-users")["spec"]["replicas"] == 3
    assert not of_kind(manifests, "HorizontalPodAutoscaler")
    assert not of_kind(manifests, "PodDisruptionBudget")


def test_network_policies_and_ingress_can_be_switched_off() -> None:
    manifests = render({"networkPolicy.enabled": False, "ingress.enabled": False})
    assert of_kind(manifests, "NetworkPolicy") == []
    assert of_kind(manifests, "Ingress") == []
    assert len(of_kind(manifests, "Deployment")) == 2


def test_ingress_controller_namespace_and_no_ingress_rule_without_ingress() -> None:
    custom = find(render({"networkPolicy.ingressControllerNamespace": "nginx-system"}), "NetworkPolicy", "atlas-users")
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "nginx-system"}}} in custom["spec"][
        "ingress"
    ][0]["from"]
    without = find(render({"ingress.enabled": False}), "NetworkPolicy", "atlas-users")
    assert all("namespaceSelector" not in peer for peer in without["spec"]["ingress"][0]["from"])


def test_users_service_url_follows_the_users_service_port() -> None:
    data = find(render({"users.service.port": 8081}), "ConfigMap", "atlas-projects")["data"]
    assert data["USERS_SERVICE_URL"] == "http://atlas-users:8081"


def test_fullname_override_renames_everything() -> None:
    ids = resource_ids(render({"fullnameOverride": "acme"}))
    assert ("Deployment", "acme-users") in ids and ("StatefulSet", "acme-projects-postgresql") in ids
    assert all(name.startswith("acme") for _, name in ids)


def test_config_values_reach_the_configmap_and_roll_the_pods() -> None:
    base = render()
    tuned = render({"users.config.workers": 5, "users.config.logLevel": "DEBUG"})
    data = find(tuned, "ConfigMap", "atlas-users")["data"]
    assert (data["ATLAS_WORKERS"], data["ATLAS_LOG_LEVEL"]) == ("5", "DEBUG")

    def checksum(manifests: list[dict]) -> str:
        deployment = find(manifests, "Deployment", "atlas-users")
        return deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum(base) != checksum(tuned)


# -- pods: security, probes, migration, shutdown ------------------------------------------------

WORKLOADS = ["Deployment", "StatefulSet", "Pod"]


@pytest.mark.parametrize("values_name", ["defaults", "external-databases.yaml", "production.yaml"])
def test_every_pod_is_restricted_and_bounded(values_name: str) -> None:
    manifests = render(values_files=[] if values_name == "defaults" else values_file(values_name))
    pods = [doc for doc in manifests if doc["kind"] in WORKLOADS]
    assert pods
    for doc in pods:
        spec = pod_spec(doc)
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        pod_ctx = spec["securityContext"]
        assert pod_ctx["runAsNonRoot"] is True, where
        assert isinstance(pod_ctx["runAsUser"], int) and pod_ctx["runAsUser"] > 0, where
        assert pod_ctx["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        for container in spec["containers"] + spec.get("initContainers", []):
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["capabilities"] == {"drop": ["ALL"]}, where
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert set(container["resources"]) == {"requests", "limits"}, where
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), where
            # The read-only root filesystem leaves /tmp as the only writable path.
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, where


def test_service_pods_run_as_the_image_user_and_database_as_postgres() -> None:
    manifests = render()
    assert pod_spec(find(manifests, "Deployment", "atlas-users"))["securityContext"]["runAsUser"] == 10001
    assert pod_spec(find(manifests, "Pod", "atlas-users-test"))["securityContext"]["runAsUser"] == 10001
    pg = pod_spec(find(manifests, "StatefulSet", "atlas-users-postgresql"))
    assert (pg["securityContext"]["runAsUser"], pg["securityContext"]["fsGroup"]) == (70, 70)
    mounts = {m["mountPath"] for m in pg["containers"][0]["volumeMounts"]}
    assert {"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"} <= mounts
    assert env_of(pg["containers"][0])["PGDATA"].startswith("/var/lib/postgresql/data/")


def test_service_container_probes_ports_and_shutdown() -> None:
    spec = pod_spec(find(render(), "Deployment", "atlas-projects"))
    (container,) = spec["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes == {
        "startupProbe": {"path": "/livez", "port": "http"},
        "livenessProbe": {"path": "/livez", "port": "http"},
        "readinessProbe": {"path": "/readyz", "port": "http"},
    }
    assert container["command"] == ["python", "-m", "projects", "serve"]
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "python"
    assert spec["terminationGracePeriodSeconds"] == 30
    (migrate,) = spec["initContainers"]
    assert migrate["command"] == ["python", "-m", "projects", "migrate"]
    # The migration sees exactly the service's environment.
    assert migrate["envFrom"] == container["envFrom"] and migrate["env"] == container["env"]
    assert not [d for d in render() if d["kind"] == "Job"], "migrations run as an init container, not a hook Job"


def test_database_probes_use_pg_isready() -> None:
    (container,) = pod_spec(find(render(), "StatefulSet", "atlas-projects-postgresql"))["containers"]
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        command = container[kind]["exec"]["command"]
        assert command[0] == "pg_isready"
        assert command[command.index("--dbname") + 1] == "projects"
        assert command[command.index("--username") + 1] == "projects"


def test_helm_test_pods_check_each_enabled_service() -> None:
    pods = of_kind(render(values_files=values_file("users-only.yaml")), "Pod")
    assert [p["metadata"]["name"] for p in pods] == ["atlas-users-test"]
    (pod,) = pods
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "atlas/users:0.1.0"
    assert container["command"][:2] == ["python", "-c"]
    assert "/readyz" in container["command"][2] and "/db-status" in container["command"][2]
    assert container["command"][3] == "http://atlas-users:80"


def test_mixed_database_shapes_per_service() -> None:
    """The toggles are per service: users keeps its ephemeral PostgreSQL while projects goes external."""
    manifests = render(
        {
            "users.postgresql.persistence.enabled": False,
            "projects.postgresql.enabled": False,
            "projects.externalDatabase.host": "pg.example.test",
            "projects.externalDatabase.existingSecret": "pg",
        }
    )
    ids = resource_ids(manifests)
    assert {("StatefulSet", "atlas-users-postgresql"), ("Secret", "atlas-users-postgresql")} <= ids
    assert not {n for k, n in ids if n.startswith("atlas-projects-postgresql")}
    users_sts = find(manifests, "StatefulSet", "atlas-users-postgresql")
    assert "volumeClaimTemplates" not in users_sts["spec"]
    assert find(manifests, "ConfigMap", "atlas-projects")["data"]["PGHOST"] == "pg.example.test"
