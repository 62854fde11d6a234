"""Scheduled backups (<svc>.postgresql.backup): what renders, with which settings, and what is refused.

Off by default: no CronJob, claim or backup policy renders then (the toggle matrix and the Molecule
profiles keep their exact resource sets). On, per service whose database the chart runs: a CronJob running
files/backup.sh in the database's own image, restricted like every pod, connected to the database's
Service with the StatefulSet's own password Secret and key; its PersistentVolumeClaim; its NetworkPolicy.
The schedule's schema is checked against a model of the parser Kubernetes validates CronJobs with
(robfig/cron v3 ParseStandard, kubernetes/kubernetes vendor/github.com/robfig/cron/v3/parser.go, plus the
API's refusal of TZ= in the schedule): whatever the chart accepts, Kubernetes accepts.
That the job dumps, restores and keeps what it should is tests/contract/test_backup_job.py.
"""

from __future__ import annotations

import functools
import json
import os
import random
import re

import pytest

from tests.chart.test_kubernetes_schema import validation_errors
from tests.support.chart import CHART_DIR, find, lint, of_kind, render, render_error, resource_ids

VALUES_DIR = os.path.join(os.path.dirname(__file__), "values")
BACKUPS = [os.path.join(VALUES_DIR, "backups.yaml")]
USERS_ON = {"users.postgresql.backup.enabled": True}
BOTH_ON = {**USERS_ON, "projects.postgresql.backup.enabled": True}
EXTERNAL = {
    "projects.postgresql.enabled": False,
    "projects.externalDatabase.host": "db",
    "projects.externalDatabase.existingSecret": "projects-db",
}


def backup_ids(name: str) -> set[tuple[str, str]]:
    full = f"atlas-{name}-postgresql-backup"
    return {("CronJob", full), ("PersistentVolumeClaim", full), ("NetworkPolicy", full)}


def job_pod(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def selector(component: str) -> dict:
    return {
        "matchLabels": {
            "app.kubernetes.io/name": "atlas",
            "app.kubernetes.io/instance": "atlas",
            "app.kubernetes.io/component": component,
        }
    }


# -- what renders, and when ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, []),
        (USERS_ON, ["users"]),
        ({"projects.postgresql.backup.enabled": True}, ["projects"]),
        (BOTH_ON, ["users", "projects"]),
        # A disabled service renders nothing, its backup included.
        ({**BOTH_ON, "users.enabled": False}, ["projects"]),
    ],
    ids=["disabled", "users", "projects", "both", "users-service-off"],
)
def test_cronjob_claim_and_policy_exist_only_where_enabled(values: dict, expected: list[str]) -> None:
    manifests = render(values)
    ids = resource_ids(manifests)
    wanted = set().union(*(backup_ids(n) for n in expected)) if expected else set()
    assert {i for i in ids if i[1].endswith("-backup")} == wanted
    assert len(of_kind(manifests, "CronJob")) == len(expected)
    assert len(of_kind(manifests, "PersistentVolumeClaim")) == len(expected)
    # Everything else is what the defaults render: backups add, never change what is there.
    base = resource_ids(render({"users.enabled": False} if "users.enabled" in values else {}))
    assert ids - wanted == base


def test_defaults_render_nothing_of_backups() -> None:
    manifests = render()
    assert not [d for d in manifests if "backup" in json.dumps(d["metadata"])]
    assert not of_kind(manifests, "CronJob") and not of_kind(manifests, "PersistentVolumeClaim")


def test_backup_with_an_external_database_is_refused_naming_the_key() -> None:
    error = render_error({**EXTERNAL, "projects.postgresql.backup.enabled": True})
    assert "projects.postgresql.backup.enabled needs projects.postgresql.enabled" in error, error
    # Off, the external database renders as before.
    assert not of_kind(render(EXTERNAL), "CronJob")


# -- the CronJob -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["users", "projects"])
def test_cronjob_runs_the_database_image_restricted_as_uid_70(name: str) -> None:
    manifests = render(values_files=BACKUPS)
    cronjob = find(manifests, "CronJob", f"atlas-{name}-postgresql-backup")
    sts = find(manifests, "StatefulSet", f"atlas-{name}-postgresql")
    pod, sts_pod = job_pod(cronjob), sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (db,) = sts_pod["containers"]
    assert (container["image"], container["imagePullPolicy"]) == (db["image"], db["imagePullPolicy"])
    assert pod["securityContext"] == sts_pod["securityContext"]
    assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["fsGroup"] == 70
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == db["securityContext"]
    ctx = container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    assert pod["restartPolicy"] == "Never"
    assert set(container["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    # Writable: the dumps' claim and a memory-backed /tmp; the password read-only.
    mounts = {m["mountPath"]: (m["name"], m.get("readOnly", False)) for m in container["volumeMounts"]}
    assert mounts == {
        "/backups": ("backups", False),
        "/tmp": ("tmp", False),
        "/run/secrets/postgresql": ("password", True),
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["backups"]["persistentVolumeClaim"] == {"claimName": f"atlas-{name}-postgresql-backup"}
    assert volumes["tmp"]["emptyDir"]["medium"] == "Memory"


@pytest.mark.parametrize(
    "values_files",
    [BACKUPS, [*BACKUPS, os.path.join(VALUES_DIR, "playbooks.yaml")]],
    ids=["chart-secret", "existing-secret"],
)
def test_cronjob_connects_to_the_database_service_with_the_statefulsets_secret(values_files) -> None:
    manifests = render({"users.postgresql.auth.database": "atlas_users"}, values_files)
    cronjob = find(manifests, "CronJob", "atlas-users-postgresql-backup")
    (container,) = job_pod(cronjob)["containers"]
    env = env_of(container)
    sts = find(manifests, "StatefulSet", "atlas-users-postgresql")
    service = find(manifests, "Service", sts["spec"]["serviceName"])
    config = find(manifests, "ConfigMap", "atlas-users")["data"]
    assert env["PGHOST"] == service["metadata"]["name"] == config["PGHOST"]
    assert int(env["PGPORT"]) in [p["port"] for p in service["spec"]["ports"]]
    assert (env["PGDATABASE"], env["PGUSER"]) == (config["PGDATABASE"], config["PGUSER"]) == ("atlas_users", "users")
    # The password: the very volume the StatefulSet mounts, at the same path; never an env variable.
    pod_volumes = {v["name"]: v for v in job_pod(cronjob)["volumes"]}
    sts_volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert pod_volumes["password"] == sts_volumes["password"]
    (db,) = sts["spec"]["template"]["spec"]["containers"]
    assert env["ATLAS_BACKUP_PASSWORD_FILE"] == env_of(db)["POSTGRES_PASSWORD_FILE"]
    assert not [k for k in env if "PASSWORD" in k and k != "ATLAS_BACKUP_PASSWORD_FILE"]
    assert "envFrom" not in container


def test_cronjob_carries_the_script_and_the_settings() -> None:
    manifests = render(values_files=BACKUPS)
    users = find(manifests, "CronJob", "atlas-users-postgresql-backup")
    projects = find(manifests, "CronJob", "atlas-projects-postgresql-backup")
    with open(os.path.join(CHART_DIR, "files", "backup.sh")) as f:
        script = f.read()
    (container,) = job_pod(users)["containers"]
    assert container["command"] == ["sh", "-c", script, "backup.sh"]
    assert script.splitlines()[0].startswith("#") and "\nset -eu\n" in script
    # users: the defaults; projects: backups.yaml's.
    assert (users["spec"]["schedule"], projects["spec"]["schedule"]) == ("30 2 * * *", "*/15 1-5 * jan-mar,oct mon-fri")
    for cronjob in (users, projects):
        spec = cronjob["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 3)
        assert spec["startingDeadlineSeconds"] == 3600
        assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 3600
    assert users["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 2
    assert projects["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert env_of(job_pod(users)["containers"][0])["ATLAS_BACKUP_KEEP"] == "7"
    assert env_of(job_pod(projects)["containers"][0])["ATLAS_BACKUP_KEEP"] == "3"


def test_claim_size_class_access_mode_and_kept_on_uninstall() -> None:
    manifests = render(values_files=BACKUPS)
    users = find(manifests, "PersistentVolumeClaim", "atlas-users-postgresql-backup")
    projects = find(manifests, "PersistentVolumeClaim", "atlas-projects-postgresql-backup")
    assert users["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}
    assert projects["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "fast-ssd",
        "resources": {"requests": {"storage": "500Mi"}},
    }
    for claim in (users, projects):
        assert claim["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}


def test_a_long_release_name_keeps_the_cronjob_name_within_52_characters() -> None:
    """The CronJob controller names each Job <cronjob>-<11 characters>; the API refuses longer CronJob names."""
    ids = resource_ids(render({**USERS_ON, "fullnameOverride": "a" * 40}))
    (name,) = [n for kind, n in ids if kind == "CronJob"]
    assert len(name) <= 52 and ("PersistentVolumeClaim", name) in ids


# -- network policies ------------------------------------------------------------------------------


def test_backup_pods_reach_their_database_and_dns_only_and_nothing_reaches_them() -> None:
    manifests = render(BOTH_ON)
    for name in ("users", "projects"):
        policy = find(manifests, "NetworkPolicy", f"atlas-{name}-postgresql-backup")["spec"]
        assert policy["podSelector"] == selector(f"{name}-postgresql-backup")
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        assert "ingress" not in policy, "no ingress rule: nothing may reach the backup pods"
        assert policy["egress"] == [
            {
                "to": [{"namespaceSelector": {}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            },
            {"to": [{"podSelector": selector(f"{name}-postgresql")}], "ports": [{"protocol": "TCP", "port": 5432}]},
        ]
        db = find(manifests, "NetworkPolicy", f"atlas-{name}-postgresql")["spec"]
        assert db["ingress"] == [
            {
                "from": [{"podSelector": selector(name)}, {"podSelector": selector(f"{name}-postgresql-backup")}],
                "ports": [{"protocol": "TCP", "port": 5432}],
            }
        ]
        assert "egress" not in db
        # The policy's selector matches the job's pods, so it applies to them.
        labels = job_pod_labels(find(manifests, "CronJob", f"atlas-{name}-postgresql-backup"))
        assert policy["podSelector"]["matchLabels"].items() <= labels.items()
        assert not db["podSelector"]["matchLabels"].items() <= labels.items()
    # Backups off: the database admits its service only, as before.
    off = find(render(), "NetworkPolicy", "atlas-users-postgresql")["spec"]["ingress"]
    assert off[0]["from"] == [{"podSelector": selector("users")}]


def job_pod_labels(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]


def test_network_policy_off_renders_no_backup_policy() -> None:
    manifests = render({**BOTH_ON, "networkPolicy.enabled": False})
    assert of_kind(manifests, "NetworkPolicy") == []
    assert len(of_kind(manifests, "CronJob")) == 2


# -- lint, API schemas ------------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "files"), [(USERS_ON, []), ({}, BACKUPS)], ids=["users", "both"])
def test_helm_lint_strict_and_kubernetes_schemas_with_backups_on(values: dict, files: list[str]) -> None:
    proc = lint(values, files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout
    manifests = render(values, files)
    assert of_kind(manifests, "CronJob")
    assert validation_errors(manifests) == []


def test_the_api_schema_check_sees_a_misplaced_cronjob_field() -> None:
    """The validation above can fail on the new kind."""
    cronjob = json.loads(json.dumps(find(render(USERS_ON), "CronJob", "atlas-users-postgresql-backup")))
    job_pod(cronjob)["containers"][0]["volumeMount"] = []
    (error,) = validation_errors([cronjob])
    assert "volumeMount" in error


# -- the schema: settings ----------------------------------------------------------------------------

KEY = "users.postgresql.backup"
SETTING_REFUSALS = {
    "keep-0": ({f"{KEY}.keep": 0}, f"{KEY}.keep: Must be greater than or equal to 1"),
    "keep-366": ({f"{KEY}.keep": 366}, f"{KEY}.keep: Must be less than or equal to 365"),
    "keep-string": ({f"{KEY}.keep": "7"}, f"{KEY}.keep: Invalid type. Expected: integer"),
    "keep-fraction": ({f"{KEY}.keep": 1.5}, f"{KEY}.keep: Invalid type. Expected: integer"),
    "size-word": ({f"{KEY}.persistence.size": "lots"}, f"{KEY}.persistence.size: Does not match pattern"),
    "size-space": ({f"{KEY}.persistence.size": "2 Gi"}, f"{KEY}.persistence.size: Does not match pattern"),
    "size-GB": ({f"{KEY}.persistence.size": "2GB"}, f"{KEY}.persistence.size: Does not match pattern"),
    "size-negative": ({f"{KEY}.persistence.size": "-1Gi"}, f"{KEY}.persistence.size: Does not match pattern"),
    "size-empty": ({f"{KEY}.persistence.size": ""}, f"{KEY}.persistence.size: Does not match pattern"),
    "size-milli": ({f"{KEY}.persistence.size": "100m"}, f"{KEY}.persistence.size: Does not match pattern"),
    "size-zero": ({f"{KEY}.persistence.size": 0}, f"{KEY}.persistence.size: Must be greater than or equal to 1"),
    "storage-class-type": ({f"{KEY}.persistence.storageClass": 1}, f"{KEY}.persistence.storageClass: Invalid type"),
    "unknown-key": ({f"{KEY}.schedual": "@daily"}, f"{KEY}: Additional property schedual is not allowed"),
    "unknown-persistence-key": (
        {f"{KEY}.persistence.accessModes": ["ReadWriteMany"]},
        f"{KEY}.persistence: Additional property accessModes is not allowed",
    ),
    "enabled-type": ({f"{KEY}.enabled": "yes"}, f"{KEY}.enabled: Invalid type. Expected: boolean"),
    "deadline-below-10": (
        {f"{KEY}.startingDeadlineSeconds": 5},
        f"{KEY}.startingDeadlineSeconds: Must be greater than or equal to 10",
    ),
    "backoff-negative": ({f"{KEY}.backoffLimit": -1}, f"{KEY}.backoffLimit: Must be greater than or equal to 0"),
    "no-limits": ({f"{KEY}.resources.limits": None}, f"{KEY}.resources: limits is required"),
}


@pytest.mark.parametrize(("values", "message"), SETTING_REFUSALS.values(), ids=SETTING_REFUSALS.keys())
def test_schema_refuses_bad_settings(values: dict, message: str) -> None:
    error = render_error(values)
    assert "values don't meet the specifications of the schema" in error
    assert message in error, error


# -- the schema: schedules -----------------------------------------------------------------------------

# Schedules Kubernetes refuses (the model below agrees, so each is a real refusal, not a guess).
KUBERNETES_REFUSES = [
    "",
    "daily",
    "every night at two",
    "0 2 * *",  # 4 fields
    "0 0 2 * * *",  # 6 fields: robfig's seconds format, not ParseStandard's
    "0 0 2 * * * 2026",  # 7 fields
    "60 2 * * *",
    "0 24 * * *",
    "0 2 0 * *",
    "0 2 32 * *",
    "0 2 * 0 *",
    "0 2 * 13 *",
    "0 2 * * 7",
    "*/0 2 * * *",
    "0 2 * * MON#2",
    "0 2 L * *",
    "0 2 * * 1-5-6",
    "0 2/3/4 * * *",
    "0 2 * smarch *",
    "@reboot",
    "@Daily",
    "@daily ",
    " @daily",
    "TZ=UTC 0 2 * * *",
    "CRON_TZ=Europe/Paris 0 2 * * *",
    "-1 2 * * *",
]
# Kubernetes accepts these, the chart does not: narrower on purpose (documented in the schema).
CHART_NARROWER = [
    "@every 1h30m",  # accepted by the parser, not among the macros Kubernetes documents
    "1,,2 * * * *",  # empty list items are dropped by the parser
    "*-5 * * * *",  # the parser ignores what follows '*-'
    "+5 * * * *",  # strconv.Atoi takes a sign
    "0 2 * * * ",  # trailing blank (strings.Fields ignores it)
    "0 0/100 * * *",  # steps above 99
]
CHART_ACCEPTS = [
    "30 2 * * *",
    "*/15 1-5 * jan-mar,oct mon-fri",
    "0 */6 * * *",
    "5 4 * * sun",
    "0 0 1 JAN,Jul *",
    "15 1-5/2 * * MON-FRI",
    "0 3 ? * *",
    "0,30 8-18 * * 1-5",
    "00 02 01 01 00",
    "59 23 31 12 6",
    "0 2 * * sat",
    "5/10 * * * *",
    "0 2\t* * *",
    "0  2 * * *",
    "@hourly",
    "@daily",
    "@midnight",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
]
# Schema-valid in form, refused for a backwards range by templates/_validate.tpl (as Kubernetes does).
BACKWARDS = {
    "30-10 2 * * *": "30-10 runs backwards (30 > 10)",
    "0 2 * dec-jan *": "dec-jan runs backwards (12 > 1)",
    "0 2 * * sat-sun": "sat-sun runs backwards (6 > 0)",
    "0 23-1/2 * * *": "23-1/2 runs backwards (23 > 1)",
}


@functools.cache
def _schedule_pattern() -> re.Pattern:
    with open(os.path.join(CHART_DIR, "values.schema.json")) as f:
        return re.compile(json.load(f)["definitions"]["cronSchedule"]["pattern"])


def schema_accepts(schedule: str) -> bool:
    # jsonschema's "pattern": re.search; the pattern is anchored. Go's RE2 (helm) reads it the same way.
    return _schedule_pattern().search(schedule) is not None


@pytest.mark.parametrize("schedule", KUBERNETES_REFUSES + CHART_NARROWER)
def test_schema_refuses_schedules(schedule: str) -> None:
    error = render_error({f"{KEY}.schedule": schedule})
    assert f"{KEY}.schedule: Does not match pattern" in error, error


@pytest.mark.parametrize("schedule", CHART_ACCEPTS)
def test_schema_accepts_what_kubernetes_accepts(schedule: str) -> None:
    (cronjob,) = of_kind(render({**USERS_ON, f"{KEY}.schedule": schedule}), "CronJob")
    assert cronjob["spec"]["schedule"] == schedule
    assert k8s_schedule_error(schedule) is None


@pytest.mark.parametrize(("schedule", "message"), BACKWARDS.items(), ids=BACKWARDS.keys())
def test_backwards_ranges_are_refused_naming_the_key(schedule: str, message: str) -> None:
    assert schema_accepts(schedule)
    assert "beginning of range" in (k8s_schedule_error(schedule) or "")
    error = render_error({f"{KEY}.schedule": schedule})
    assert f'{KEY}.schedule "{schedule}": the range {message}; Kubernetes refuses it' in error, error


def test_the_lists_above_are_what_kubernetes_says() -> None:
    """The refusals are Kubernetes' (the model refuses them), the narrower ones Kubernetes would take."""
    assert [s for s in KUBERNETES_REFUSES if k8s_schedule_error(s) is None] == []
    assert [s for s in CHART_NARROWER if k8s_schedule_error(s) is not None] == []


def test_every_schedule_the_schema_accepts_kubernetes_accepts() -> None:
    """30 000 generated schedules, valid and not: schema-accepted implies model-accepted, except backwards
    ranges, which the chart's own check refuses (a sample goes through the real helm)."""
    rng = random.Random(20260301)
    refused_by_model = both = 0
    backwards: list[str] = []
    for _ in range(30000):
        schedule = _random_schedule(rng)
        error = k8s_schedule_error(schedule)
        if error is not None:
            refused_by_model += 1
        if not schema_accepts(schedule):
            continue
        if error is not None:
            assert "beginning of range" in error, (schedule, error)
            backwards.append(schedule)
        else:
            both += 1
    assert both > 3000 and refused_by_model > 5000, (both, refused_by_model)  # not vacuous
    assert backwards
    for schedule in backwards[:5]:
        assert "runs backwards" in render_error({f"{KEY}.schedule": schedule})


# -- a model of what the Kubernetes API accepts as spec.schedule -------------------------------------

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTHS = {m: i for i, m in enumerate(MONTH_NAMES, start=1)}
DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
FIELDS = [(0, 59, None), (0, 23, None), (1, 31, None), (1, 12, MONTHS), (0, 6, DAYS)]
DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
GO_DURATION = re.compile(r"[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+|[-+]?0")


def _atoi(text: str) -> int | None:
    """Go's strconv.Atoi, then robfig's refusal of negatives."""
    if not re.fullmatch(r"[+-]?[0-9]+", text) or abs(int(text)) >= 2**63:
        return None
    value = int(text)
    return value if value >= 0 else None


def _range_error(expr: str, low: int, high: int, names: dict | None) -> str | None:
    """robfig/cron v3 getRange: number | number "-" number [ "/" number ], '*' and '?' for the whole range."""

    def value(text: str) -> int | None:
        if names is not None and text.lower() in names:
            return names[text.lower()]
        return _atoi(text)

    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    if low_and_high[0] in ("*", "?"):
        start, end = low, high
    else:
        start = value(low_and_high[0])
        if start is None:
            return f"failed to parse int from {low_and_high[0]}"
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = value(low_and_high[1])
            if end is None:
                return f"failed to parse int from {low_and_high[1]}"
        else:
            return f"too many hyphens: {expr}"
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _atoi(range_and_step[1])
        if step is None:
            return f"failed to parse int from {range_and_step[1]}"
        if len(low_and_high) == 1:
            end = high  # "N/step" means "N-max/step"
    else:
        return f"too many slashes: {expr}"
    if start < low:
        return f"beginning of range ({start}) below minimum ({low}): {expr}"
    if end > high:
        return f"end of range ({end}) above maximum ({high}): {expr}"
    if start > end:
        return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    if step == 0:
        return f"step of range should be a positive number: {expr}"
    return None


def k8s_schedule_error(schedule: str) -> str | None:
    """Why the API server refuses ``schedule`` as a CronJob's spec.schedule (None: it accepts it).

    pkg/apis/batch/validation: cron.ParseStandard must parse it, and TZ/CRON_TZ must not appear in it
    (spec.timeZone is the way). ParseStandard = Minute | Hour | Dom | Month | Dow | Descriptor.
    """
    if "TZ" in schedule:
        return "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    if not schedule:
        return "empty spec string"
    if schedule.startswith("@"):
        if schedule in DESCRIPTORS:
            return None
        if schedule.startswith("@every ") and GO_DURATION.fullmatch(schedule[len("@every ") :]):
            return None
        return f"unrecognized descriptor: {schedule}"
    fields = schedule.split()  # strings.Fields
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: {fields}"
    for text, (low, high, names) in zip(fields, FIELDS, strict=True):
        for expr in [e for e in text.split(",") if e]:  # strings.FieldsFunc drops empty items
            error = _range_error(expr, low, high, names)
            if error:
                return error
    return None


def _random_schedule(rng: random.Random) -> str:
    """Mostly in-range atoms of the field's own kind, some hostile ones (out of range, wrong names, junk)."""
    hostile = ["60", "24", "32", "13", "7", "00", "07", "010", "+3", "-1", "99", "100", "smarch", "L", "W", "#2", ""]
    hostile += ["JAN", "Mon", "sUn", "mon", "jul"]

    def atom(index: int) -> str:
        low, high, names = FIELDS[index]
        if rng.random() < 0.03:
            return rng.choice(hostile)
        if rng.random() < 0.2:
            return rng.choice(["*", "?"])
        if names and rng.random() < 0.3:
            name = rng.choice(list(names))
            return rng.choice([name, name.upper(), name.capitalize()])
        return str(rng.randint(low, high))

    def element(index: int) -> str:
        if rng.random() < 0.6:
            text = atom(index)
        elif rng.random() < 0.6:  # an ordered numeric range
            low, high, _ = FIELDS[index]
            text = "-".join(map(str, sorted(rng.randint(low, high) for _ in range(2))))
        else:
            text = f"{atom(index)}-{atom(index)}"
        if rng.random() < 0.25:
            good = rng.random() < 0.9
            text += "/" + rng.choice(["1", "2", "5", "15", "60", "99"] if good else ["0", "x", "7/2", "100"])
        return text

    def field(index: int) -> str:
        return ",".join(element(index) for _ in range(rng.choice([1, 1, 1, 2, 3])))

    if rng.random() < 0.03:
        return rng.choice([*DESCRIPTORS, "@every 5m", "@reboot", "@Daily", "@daily "])
    count = rng.choice([5] * 8 + [4, 6])
    fields = [field(i % 5) for i in range(count)]
    return rng.choice([" ", " ", "  ", "\t"]).join(fields)
