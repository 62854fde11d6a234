"""NOTES.txt tells the user what was installed and how to reach it, for the shape actually installed."""

from __future__ import annotations

from tests.support.chart import render_notes


def test_defaults_list_both_services_their_databases_and_the_ingress_urls() -> None:
    notes = render_notes()
    assert 'release "atlas" in namespace "atlas"' in notes
    assert "users: Deployment atlas-users, Service http://atlas-users:80" in notes
    assert "PostgreSQL StatefulSet atlas-projects-postgresql (persistent, 1Gi)" in notes
    assert "http://atlas.local/api/v1/users" in notes and "http://atlas.local/api/v1/projects" in notes
    assert "helm test atlas --namespace atlas" in notes
    # minikube ip is reachable from the host only with the docker driver on Linux.
    assert "Linux, docker driver: point atlas.local at `minikube ip` in /etc/hosts." in notes
    assert "run `minikube tunnel`\n    and point atlas.local at 127.0.0.1" in notes


def test_projects_only_without_ingress_explains_owner_check_and_port_forward() -> None:
    notes = render_notes({"users.enabled": False, "ingress.enabled": False})
    assert "atlas-users" not in notes
    assert "projects runs without USERS_SERVICE_URL" in notes
    assert "kubectl --namespace atlas port-forward service/atlas-projects 8080:80" in notes
    assert "atlas.local" not in notes


def test_ephemeral_external_and_tls_shapes_are_named() -> None:
    notes = render_notes(
        {
            "users.postgresql.persistence.enabled": False,
            "projects.postgresql.enabled": False,
            "projects.externalDatabase.host": "pg.example.test",
            "projects.externalDatabase.existingSecret": "pg",
            "ingress.tls.enabled": True,
            "ingress.tls.secretName": "tls",
        }
    )
    assert "EPHEMERAL: emptyDir, data is lost with the pod" in notes
    assert "database: external, pg.example.test:5432" in notes
    assert "password: Secret pg, key password" in notes
    assert "https://atlas.local/api/v1/projects" in notes


def test_nothing_enabled_says_so() -> None:
    notes = render_notes({"users.enabled": False, "projects.enabled": False})
    assert "Both services are disabled" in notes
    assert "helm test" not in notes
