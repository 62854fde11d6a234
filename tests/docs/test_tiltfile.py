"""The Tiltfile deploys what Ansible renders, builds the images the chart runs, and its live update works.

Tilt cannot run here, so the Tiltfile is loaded through tests/docs/tilt_api.py: Tilt's documented
builtins with their real signatures, with ``local()`` running the real ``make render`` (Ansible) and
the test reading the real files. Every name compared below is read from where it is defined
(group_vars, the inventory, the roles, the chart, the Makefile), never written down twice.
"""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import time

import pytest
import requests
import yaml

from tests.support.net import free_port
from tests.support.postgres import wait_until
from tests.support.signals import reset_signals

from .tilt_api import TiltfileError, evaluate, lint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_yaml(relative: str):
    with open(os.path.join(ROOT, relative)) as f:
        return yaml.safe_load(f)


GROUP_VARS = {
    **load_yaml("group_vars/all/atlas.yml"),
    **load_yaml("group_vars/all/auth.yml"),
    **load_yaml("group_vars/all/profiles.yml"),
    **load_yaml("group_vars/all/services.yml"),
}
DEV_VARS = load_yaml("inventories/dev/group_vars/atlas.yml")
# Minikube names the kube context after the profile, which group_vars derive from the environment.
DEV_CONTEXT = re.sub(r"\{\{\s*atlas_env\s*\}\}", DEV_VARS["atlas_env"], GROUP_VARS["atlas_minikube_profile"])
CHART_VALUES = load_yaml("charts/atlas/values.yaml")
PROFILES = GROUP_VARS["atlas_profiles"]


def jinja_path(template: str, **variables: str) -> str:
    """Resolve the simple '{{ name }}' paths of group_vars (atlas_build_dir, atlas_chart_path) relative to ROOT."""
    variables = {"atlas_project_root": "", **variables}
    resolved = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: variables[m.group(1)], template)
    return resolved.lstrip("/")


@pytest.fixture(scope="module")
def tilt_up():
    """`tilt up -- --profile=<profile>` loaded once per profile (each runs the real `make render`)."""
    runs = {}

    def load(profile: str):
        if profile not in runs:
            runs[profile] = evaluate(ROOT, DEV_CONTEXT, {"profile": profile})
        return runs[profile]

    return load


def test_tiltfile_passes_the_starlark_linter():
    assert lint(ROOT) == []


def test_values_source_is_the_dev_render(tilt_up):
    run = tilt_up("full")
    env = DEV_VARS["atlas_env"]
    # The command the Makefile's render target documents, for the dev inventory.
    with open(os.path.join(ROOT, "Makefile")) as f:
        makefile = f.read()
    render = re.search(r"^render:.*\n\t(.+)$", makefile, re.MULTILINE).group(1)
    assert "playbooks/render.yml" in render and "inventories/$(ENV)" in render
    assert run.commands == [f"make --no-print-directory render ENV={env} PROFILE=full"]
    # The files read are the values role's output for that environment and profile.
    build_dir = jinja_path(GROUP_VARS["atlas_build_dir"], atlas_env=env, atlas_profile="full")
    assert f"{build_dir}/values.yaml" in run.watched
    assert f"{build_dir}/manifests.yaml" in run.watched
    # ...and the Tiltfile re-renders when the chart the playbooks install changes.
    assert jinja_path(GROUP_VARS["atlas_chart_path"]) in run.watched


def test_deploys_exactly_the_rendered_manifests_but_the_dev_command(tilt_up):
    run = tilt_up("full")
    build_dir = jinja_path(GROUP_VARS["atlas_build_dir"], atlas_env=DEV_VARS["atlas_env"], atlas_profile="full")
    with open(os.path.join(ROOT, build_dir, "manifests.yaml")) as f:
        rendered = [d for d in yaml.safe_load_all(f) if d]
    expected = [d for d in rendered if d["metadata"].get("annotations", {}).get("helm.sh/hook") != "test"]
    assert len(expected) < len(rendered), "the render has helm test pods; Tilt must leave them out"

    deployed = copy.deepcopy(run.deployed)
    for obj in deployed:
        if obj["kind"] == "Deployment":
            spec = obj["spec"]["template"]["spec"]
            service = obj["metadata"]["labels"]["app.kubernetes.io/component"]
            (main,) = [c for c in spec["containers"] if c["name"] == service]
            # The dev command wraps the chart's own command, unchanged, after the script's $0.
            assert main["command"][:2] == ["sh", "-c"]
            main["command"] = main["command"][4:]
    assert deployed == expected


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profile_selects_images_and_resources(tilt_up, profile):
    run = tilt_up(profile)
    services = PROFILES[profile]["services"]
    built = {b["ref"] for b in run.called("docker_build")}
    assert built == {CHART_VALUES[s]["image"]["repository"] for s in services}
    assert {r["new_name"] for r in run.called("k8s_resource")} == {n for s in services for n in (s, f"{s}-db")}
    components = {o["metadata"]["labels"].get("app.kubernetes.io/component") for o in run.deployed}
    for service in set(GROUP_VARS["atlas_services"]) - set(services):
        assert service not in components


def test_images_are_the_ones_the_chart_runs(tilt_up):
    run = tilt_up("full")
    chart_values = load_yaml("charts/atlas/values.yaml")
    refs = {b["ref"] for b in run.called("docker_build")}
    assert refs == {chart_values[s]["image"]["repository"] for s in GROUP_VARS["atlas_services"]}
    # Tilt swaps its build into every container whose image has that repository (any tag).
    deployed_images = {
        c["image"].rsplit(":", 1)[0]
        for o in run.deployed
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["initContainers"] + o["spec"]["template"]["spec"]["containers"]
    }
    assert deployed_images == refs


def test_image_builds_use_the_image_inputs(tilt_up):
    run = tilt_up("full")
    inputs = load_yaml("roles/image_tags/defaults/main.yml")
    source_dir = jinja_path(inputs["image_tags_source_dir"])
    for build in run.called("docker_build"):
        service = build["ref"].split("/")[-1]
        assert build["context"] == source_dir
        # One Dockerfile, the service a build argument (as the images role builds it).
        assert build["dockerfile"] == f"{source_dir}/Dockerfile" and build["build_args"] == {"SERVICE": service}
        assert os.path.isfile(os.path.join(ROOT, build["dockerfile"]))
        # Exactly what the image tag hashes: a change Tilt ignores never changes the tag, and back.
        assert sorted(build["only"]) == sorted(p.replace("<service>", service) for p in inputs["image_tags_inputs"])


def test_live_update_syncs_code_and_falls_back_on_dependencies(tilt_up):
    run = tilt_up("full")
    for build in run.called("docker_build"):
        steps = build["live_update"]
        kinds = [s["kind"] for s in steps]
        # Tilt's required order: fall_back_on, then sync, then run.
        assert kinds == sorted(kinds, key=["fall_back_on", "sync", "run"].index)
        context = os.path.join(ROOT, build["context"])
        included = [os.path.join(context, p) for p in build["only"]]
        for step in steps:
            paths = {"fall_back_on": step.get("files"), "sync": [step.get("local_path")]}.get(step["kind"], [])
            for path in paths:
                full = os.path.join(ROOT, path)
                assert os.path.exists(full), path
                assert any(full == p or full.startswith(p + os.sep) for p in included), f"{path} is not in the build"
        service = build["ref"].split("/")[-1]
        synced = {s["local_path"] for s in steps if s["kind"] == "sync"}
        assert synced == {f"services/{service}/{service}", "services/common/atlas_common"}
        fallbacks = {f for s in steps if s["kind"] == "fall_back_on" for f in s["files"]}
        assert {"services/requirements.txt", f"services/{service}/pyproject.toml"} <= fallbacks
        assert [s["cmd"] for s in steps if s["kind"] == "run"] == ["kill -HUP 1"]


def test_resources_database_first_port_forwards_and_links(tilt_up):
    run = tilt_up("full")
    resources = {r["new_name"]: r for r in run.called("k8s_resource")}
    workloads = {o["metadata"]["name"]: o for o in run.deployed if o["kind"] in ("Deployment", "StatefulSet")}
    release = GROUP_VARS["atlas_release_name"]
    local_ports = set()
    assert set(PROFILES["full"]["services"]) == set(GROUP_VARS["atlas_services"]), "full runs every service"
    for service in GROUP_VARS["atlas_services"]:
        api, db = resources[service], resources[f"{service}-db"]
        assert api["workload"] == f"{release}-{service}" and api["workload"] in workloads
        assert db["workload"] == f"{release}-{service}-postgresql" and db["workload"] in workloads
        assert api["resource_deps"] == [f"{service}-db"]
        assert api["labels"] == db["labels"] == [service]
        (forward,) = api["port_forwards"]
        (container,) = [
            c for c in workloads[api["workload"]]["spec"]["template"]["spec"]["containers"] if c["name"] == service
        ]
        assert forward["container_port"] == next(p["containerPort"] for p in container["ports"] if p["name"] == "http")
        # The service's first entry path (auth: its token endpoint), as the chart routes it.
        assert forward["link_path"] == CHART_VALUES[service]["entry"]["paths"][0]
        local_ports.add(forward["local_port"])
        urls = {link["url"] for link in api["links"]}
        assert f"http://localhost:{forward['local_port']}/openapi.json" in urls
        # dev's entry is the Gateway API (reached through a port-forward, README): no ingress link.
        assert not [u for u in urls if GROUP_VARS["atlas_entry_host"] in u]
    assert len(local_ports) == len(GROUP_VARS["atlas_services"]), "two APIs forwarded to one local port"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_enabled_service_in_name_order_gets_the_next_port(tilt_up, profile):
    """The services come from the rendered values (a new service needs no Tiltfile change), their ports from a base."""
    run = tilt_up(profile)
    forwards = {
        r["new_name"]: r["port_forwards"][0]["local_port"] for r in run.called("k8s_resource") if r["port_forwards"]
    }
    services = sorted(PROFILES[profile]["services"])
    assert forwards == {service: 8081 + index for index, service in enumerate(services)}


def test_port_flag_moves_the_forwards():
    run = evaluate(ROOT, DEV_CONTEXT, {"profile": "full", "port-base": "9181"})
    forwards = {
        r["new_name"]: r["port_forwards"][0]["local_port"] for r in run.called("k8s_resource") if r["port_forwards"]
    }
    assert forwards == {"auth": 9181, "projects": 9182, "users": 9183}


def test_the_dev_minikube_context_is_allowed(tilt_up):
    assert tilt_up("full").called("allow_k8s_contexts") == [{"contexts": DEV_CONTEXT}]


def test_refuses_another_kube_context_before_deploying_anything():
    """The kube context to expect is the one the settings role computed, which `make render` writes
    (target.yaml): the render runs first, and it touches no cluster; nothing else runs."""
    with pytest.raises(TiltfileError) as failure:
        evaluate(ROOT, "prod-eu-1", {"profile": "full"})
    assert failure.value.run.commands == ["make --no-print-directory render ENV=dev PROFILE=full"]
    assert not failure.value.run.called("docker_build") and not failure.value.run.called("k8s_yaml")
    assert failure.value.run.called("allow_k8s_contexts") == []
    assert f"kube context is 'prod-eu-1', but Tilt deploys to the dev Minikube profile '{DEV_CONTEXT}'" in str(
        failure.value
    )


def test_bad_profile_stops_with_the_settings_message():
    with pytest.raises(TiltfileError) as failure:
        evaluate(ROOT, DEV_CONTEXT, {"profile": "fulll"})
    assert 'atlas_profile: "fulll" is not a profile; allowed: ephemeral, full, projects-only, users-only' in str(
        failure.value
    )


def test_undocumented_flags_are_refused():
    with pytest.raises(TiltfileError, match="unknown flags"):
        evaluate(ROOT, DEV_CONTEXT, {"profil": "full"})


# -- the dev container command, run for real -------------------------------------------------------


@pytest.mark.slow
def test_dev_loop_reloads_synced_code_on_hup_and_stops_on_term(tilt_up, tmp_path):
    """The users container's command from the Tiltfile, run here as in the image (python -m users serve).

    LIVE_DIR is moved into tmp_path; everything else (seeding, PYTHONPATH, the restart loop, the
    chart's own serve command) is exactly what the pod runs.
    """
    run = tilt_up("users-only")
    (deployment,) = [o for o in run.deployed if o["kind"] == "Deployment"]
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "users"]
    live = tmp_path / "live"
    command = [part.replace("/tmp/live", str(live)) for part in container["command"]]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "ATLAS_", "GUNICORN_", "PYTHONPATH"))}
    env.update(ATLAS_BIND=f"127.0.0.1:{port}", ATLAS_WORKERS="1", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    log = open(tmp_path / "dev-loop.log", "wb")  # noqa: SIM115 - open for the process's lifetime
    # Signals as the container runtime leaves them: the script's HUP and TERM traps work even under nohup.
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=reset_signals)

    def livez() -> dict | None:
        try:
            return requests.get(f"http://127.0.0.1:{port}/livez", timeout=1).json()
        except requests.ConnectionError:
            return None

    try:
        wait_until(lambda: livez() == {"status": "alive"}, timeout=20)
        # Seeded from the installed packages, so an edit there is what Tilt's sync would do.
        probes = live / "atlas_common" / "probes.py"
        assert (live / "users" / "wsgi.py").is_file() and probes.is_file()
        probes.write_text(probes.read_text().replace('jsonify(status="alive")', 'jsonify(status="edited")'))
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGHUP)  # Tilt's run('kill -HUP 1'); the script is PID 1 in the pod
        # A hang guard, not a speed bound (the figure is printed): the loop restarts the whole server, which
        # takes seconds alone and much longer on a loaded 2-core machine.
        wait_until(lambda: livez() == {"status": "edited"}, timeout=90)
        restart_seconds = time.monotonic() - started
        print(f"dev loop: edited code served {restart_seconds:.2f}s after SIGHUP")
        assert proc.poll() is None, "the loop must survive a restart"
        proc.send_signal(signal.SIGTERM)  # pod deletion
        assert proc.wait(timeout=15) == 0
        assert livez() is None
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def test_make_targets_start_and_stop_tilt_with_the_profile(tilt_up):
    listing = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    section = listing.split("Developer loop\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[0] for line in section.splitlines()] == ["tilt", "tilt-down"]
    dry_run = subprocess.run(
        ["make", "-n", "tilt", "PROFILE=users-only"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    # The flag the Tiltfile defines, with the Makefile's PROFILE.
    assert "tilt up -- --profile=users-only" in dry_run.splitlines()
    assert "profile" in tilt_up("full").defined_settings
