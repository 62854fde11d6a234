"""The first `make deploy` on a laptop, up to the images: playbooks/bootstrap.yml then images.yml on the
dev inventory, from nothing, then once more.

Real: ansible-playbook, every role (settings, minikube preflight and cluster, tools, image_tags, images),
the real helm binary. Stand-in: `docker`, `minikube` and `kubectl` (tests/provisioning/standins), which
answer as docker 28.2.2, minikube v1.35.0 and kubectl v1.32.4 do and keep the profile, its addons and
its images between calls — including minikube's exit 0 for a failed `image build`. What only a real
Docker engine can prove — that the profile starts and the Dockerfiles build — is `make molecule-cluster`.
"""

from __future__ import annotations

import pytest
import yaml

from tests.provisioning.ansible_run import REPO_ROOT, run_playbook
from tests.provisioning.standins import Standins

pytestmark = pytest.mark.logic

PROFILE = "atlas-dev"
with open(f"{REPO_ROOT}/group_vars/all/profiles.yml") as _fh:
    PROFILES = yaml.safe_load(_fh)["atlas_profiles"]


@pytest.fixture
def laptop(tmp_path):
    """A laptop with Docker running and nothing else: no Minikube profile, no images, empty ~/.local/bin."""
    standins = Standins(tmp_path / "laptop")
    yield standins
    standins.remove()


def _first_run(laptop: Standins, tmp_path):
    extra = {"atlas_build_dir": str(tmp_path / "build")}
    bootstrap = run_playbook("playbooks/bootstrap.yml", "dev", extra, env=laptop.env())
    images = run_playbook("playbooks/images.yml", "dev", extra, env=laptop.env()) if bootstrap.rc == 0 else None
    return bootstrap, images


def _built_tags(laptop: Standins) -> list[str]:
    return [call[call.index("-t") + 1] for call in laptop.calls("minikube", "image", "build")]


def test_first_run_starts_once_and_builds_every_image_then_changes_nothing(laptop, tmp_path):
    bootstrap, images = _first_run(laptop, tmp_path)

    assert bootstrap.rc == 0, bootstrap.failure_messages()
    assert images is not None and images.rc == 0, images.failure_messages()
    assert len(laptop.calls("minikube", "start")) == 1
    # The Gateway API entry (atlas_entry's default) brings its own controller: no ingress addon.
    assert sorted(c[2] for c in laptop.calls("minikube", "addons", "enable")) == ["metrics-server"]
    built = _built_tags(laptop)
    assert sorted(t.split(":")[0] for t in built) == [f"atlas/{s}" for s in sorted(PROFILES["full"]["services"])]
    # One Dockerfile, the service a build argument (minikube passes --build-opt on to docker build).
    for call in laptop.calls("minikube", "image", "build"):
        service = call[call.index("-t") + 1].split(":")[0].split("/")[-1]
        assert call[call.index("-f") + 1] == "Dockerfile" and f"--build-opt=build-arg=SERVICE={service}" in call
    profile = laptop.state()["profiles"][PROFILE]
    assert {f"docker.io/{t}" for t in built} <= set(profile["images"])

    laptop.clear_calls()
    bootstrap2, images2 = _first_run(laptop, tmp_path)

    assert bootstrap2.rc == 0 and images2.rc == 0
    assert laptop.calls("minikube", "start") == [] and laptop.calls("minikube", "addons", "enable") == []
    assert _built_tags(laptop) == []
    assert (bootstrap2.changed(), images2.changed()) == (0, 0)


def test_a_failed_build_that_exits_0_fails_the_run_naming_service_tag_and_output(laptop, tmp_path):
    bootstrap = run_playbook("playbooks/bootstrap.yml", "dev", env=laptop.env())  # the profile runs, no images yet
    assert bootstrap.rc == 0, bootstrap.failure_messages()
    render = run_playbook("playbooks/render.yml", "dev", {"atlas_build_dir": str(tmp_path / "r")}, env=laptop.env())
    assert render.rc == 0, render.failure_messages()
    values = yaml.safe_load((tmp_path / "r" / "values.yaml").read_text())
    failing = f"atlas/users:{values['users']['image']['tag']}"
    laptop.update(build_failures=[failing])

    images = run_playbook("playbooks/images.yml", "dev", {"atlas_build_dir": str(tmp_path / "b")}, env=laptop.env())

    assert images.rc != 0
    [message] = [m for m in images.failure_messages() if "is not in Minikube" in m]
    assert message.startswith(f"users: the image {failing} is not in Minikube profile {PROFILE}")
    assert "ERROR: failed to solve" in message  # the build's own last lines
    assert "Install or upgrade the chart" not in images.tasks_run()
