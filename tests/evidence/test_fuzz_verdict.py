"""`make fuzz`'s verdict, read from schemathesis' own NDJSON event streams.

The streams in fuzz_events/ were recorded from real schemathesis 4.32.5 runs here, against the services
`make fuzz` starts (evidence/stack.py), each with the command in its first line (`Initialize`) and
`--report ndjson --generation-database none`:
- projects-post-owner-not-found: `--checks all --continue-on-failure --include-method POST --include-path
  /api/v1/projects --phases fuzzing --max-examples=3 --seed=1`, owner check on, no user in the users service:
  schemathesis printed "6 generated, 1 found 1 unique failure" (positive_data_acceptance, 422 owner_not_found)
  and exited 1;
- users-list-clean: the same on GET /api/v1/users: "9 generated, 9 passed", exit 0;
- users-no-test-case: `--phases examples` (the documents have no examples): "No test cases were generated",
  exit 2;
- projects-owner-not-found-excused: as `make fuzz` runs projects, with SCHEMATHESIS_HOOKS=evidence/fuzz_hooks.py
  and `--exclude-checks positive_data_acceptance`, on `--include-method POST --include-method PATCH --phases
  fuzzing --max-examples=3 --seed=1`, owner check on, no user: "6 generated, 6 passed", exit 0. The same command
  without the hooks and the exclusion, on the same stack, drew the same six cases and failed four of them
  (positive_data_acceptance: 3 POST and 1 PATCH answered 422 owner_not_found; "2 unique failures"), exit 1.
One change since: the 32-hex-digit ids (of events, and X-Request-ID values) are spelt as dashed UUIDs, the same
values in the form detect-secrets (tests/security/test_secrets.py) knows is not a secret.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess

import pytest
from atlas_common import openapi

from evidence import fuzz, fuzz_hooks

EVENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_events")


def lines(name: str) -> list[str]:
    with open(os.path.join(EVENTS, f"{name}.ndjson")) as f:
        return f.readlines()


def read(name: str, exit_code: int | None) -> fuzz.FuzzResult:
    return fuzz.read_events(lines(name), fuzz.FuzzResult(name, exit_code))


def test_a_clean_run_passes_and_every_check_ran() -> None:
    result = read("users-list-clean", 0)
    assert result.verdict() == []
    assert (result.cases, result.failing_cases, result.server_errors) == (9, 0, 0)  # "9 generated, 9 passed"
    assert result.finished
    # --checks all: the checks beyond the four the fuzz once chose ran too.
    assert {"negative_data_rejection", "positive_data_acceptance", "unsupported_method", "use_after_free"} <= (
        result.checks
    )


def test_a_failing_check_fails_even_when_the_exit_status_says_nothing() -> None:
    result = read("projects-post-owner-not-found", 0)  # the events alone; the real run exited 1
    assert result.failed == {"positive_data_acceptance": 3}
    assert result.failing_cases == 3
    assert result.answers == {"422 owner_not_found": 3}
    assert result.verdict() == ["3 case(s) failed positive_data_acceptance"]
    assert result.examples[0].startswith("POST http://127.0.0.1:")
    assert result.examples[0].endswith("/api/v1/projects -> 422 owner_not_found (positive_data_acceptance)")


def test_a_non_zero_exit_status_fails_even_when_the_events_say_nothing() -> None:
    assert read("users-list-clean", 1).verdict() == ["schemathesis exited 1"]
    assert read("users-list-clean", None).verdict() == [f"schemathesis did not finish within {fuzz.TIME_LIMIT}s"]


def test_a_run_without_a_test_case_fails() -> None:
    result = read("users-no-test-case", 0)  # as if schemathesis had exited 0 (it exits 2)
    assert result.cases == 0
    assert result.verdict() == ["no test case ran"]
    assert read("users-no-test-case", 2).verdict() == ["schemathesis exited 2", "no test case ran"]


def test_a_check_that_crashed_fails() -> None:
    # The clean run with one result of one check turned into schemathesis' "error" (the check could not judge).
    events = "".join(lines("users-list-clean"))
    ok = '{"name":"not_a_server_error","status":"success"}'
    crashed = events.replace(ok, ok.replace("success", "error"), 1)
    assert crashed != events
    result = fuzz.read_events(crashed.splitlines(), fuzz.FuzzResult("crashed", 0))
    assert result.verdict() == ["check not_a_server_error crashed on 1 case(s)"]


def test_a_stream_cut_short_fails() -> None:
    events = lines("users-list-clean")
    assert '"EngineFinished"' in events[-1]
    result = fuzz.read_events([*events[:-2], events[-2][:50]], fuzz.FuzzResult("cut", 0))
    reasons = result.verdict()
    assert "its event stream stops before the run's end" in reasons
    assert any(reason.startswith("unreadable event: ") for reason in reasons)


@pytest.mark.parametrize(
    ("name", "cases", "invalid"),
    [
        ("projects-post-owner-not-found", 6, 2),  # 6 and 9: schemathesis' own "N generated"
        ("users-list-clean", 9, 5),
        ("users-no-test-case", 0, 0),
        ("projects-owner-not-found-excused", 6, 1),
    ],
)
def test_only_cases_generated_as_invalid_input_count_as_bad_input(name: str, cases: int, invalid: int) -> None:
    result = read(name, 0)
    assert (result.cases, result.invalid) == (cases, invalid)


def test_schemathesis_runs_every_check_and_its_exit_status_and_events_both_count(monkeypatch, tmp_path) -> None:
    """The glue: the command line, the hooks, and a run's exit status and events reaching the verdict."""
    seen = []
    runs = {"users": ("users-list-clean", 0), "projects": ("projects-owner-not-found-excused", 1)}

    def run(cmd, **kwargs):
        seen.append((cmd, kwargs["env"]))
        events, exit_code = runs["projects" if "--exclude-checks" in cmd else "users"]
        report_dir = cmd[cmd.index("--report-dir") + 1]
        with open(os.path.join(report_dir, "events.ndjson"), "w") as f:
            f.writelines(lines(events))
        return subprocess.CompletedProcess(cmd, exit_code, "schemathesis' report", "")

    monkeypatch.setattr(fuzz.subprocess, "run", run)
    monkeypatch.setattr(fuzz, "BUILD_DIR", str(tmp_path))
    monkeypatch.setenv("SCHEMATHESIS_HOOKS", "/elsewhere/hooks.py")  # not ours: never passed on
    users = fuzz.schemathesis("users", "http://127.0.0.1:1")
    projects = fuzz.schemathesis("projects", "http://127.0.0.1:1")
    [(users_cmd, users_env), (projects_cmd, projects_env)] = seen
    for cmd in (users_cmd, projects_cmd):
        assert cmd[cmd.index("--checks") + 1] == "all"
        assert "--continue-on-failure" in cmd
    # users: every check as schemathesis has it; projects: positive_data_acceptance swapped for the hooks' check
    assert "--exclude-checks" not in users_cmd
    assert "SCHEMATHESIS_HOOKS" not in users_env
    assert projects_cmd[projects_cmd.index("--exclude-checks") + 1] == "positive_data_acceptance"
    assert projects_env["SCHEMATHESIS_HOOKS"] == fuzz.HOOKS == os.path.join(fuzz.REPO, "evidence", "fuzz_hooks.py")
    assert users.verdict() == []
    assert projects.required == {fuzz_hooks.CHECK}
    assert projects.verdict() == ["schemathesis exited 1"]
    assert (tmp_path / "fuzz-projects.log").read_text() == "schemathesis' report"


def test_a_run_that_wrote_no_events_fails(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(fuzz.subprocess, "run", lambda cmd, **kwargs: subprocess.CompletedProcess(cmd, 0, "", ""))
    monkeypatch.setattr(fuzz, "BUILD_DIR", str(tmp_path))
    assert fuzz.schemathesis("users", "http://127.0.0.1:1").verdict() == [
        "its event stream stops before the run's end",
        "no test case ran",
        "schemathesis wrote no event stream",
    ]


# The exception to positive_data_acceptance on projects (evidence/fuzz_hooks.py)

OWNER_NOT_FOUND = json.dumps({"error": {"code": "owner_not_found", "message": "owner_id 1: no such user"}})
VALIDATION_ERROR = json.dumps({"error": {"code": "validation_error", "message": "owner_id: not an integer"}})
OTHER_OPERATIONS = [  # every operation of both documents but POST /api/v1/projects and PATCH .../{project_id}
    ("projects", "GET", "/api/v1/projects", {}, None),
    ("projects", "GET", "/api/v1/projects/{project_id}", {"project_id": 1}, None),
    ("projects", "DELETE", "/api/v1/projects/{project_id}", {"project_id": 1}, None),
    ("users", "POST", "/api/v1/users", {}, {"email": "ann@example.org", "name": "Ann"}),
    ("users", "GET", "/api/v1/users", {}, None),
    ("users", "GET", "/api/v1/users/{user_id}", {"user_id": 1}, None),
    ("users", "PATCH", "/api/v1/users/{user_id}", {"user_id": 1}, {"name": "Ann"}),
    ("users", "DELETE", "/api/v1/users/{user_id}", {"user_id": 1}, None),
]


def recorded(name: str) -> list[tuple[dict, dict, dict]]:
    """(case, response, check name -> status) of every case of a recorded run, in the stream's order."""
    found = []
    for line in lines(name):
        [(event, value)] = json.loads(line).items()
        if event == "ScenarioFinished":
            recorder = value["recorder"]
            for case_id, case in recorder["cases"].items():
                checks = {c["name"]: c["status"] for c in recorder["checks"][case_id]}
                found.append((case["value"], recorder["interactions"][case_id]["response"], checks))
    return found


def answered(response: dict, status: int, content: str) -> dict:
    """A recorded response with another status and body."""
    return {**response, "status_code": status, "content": {"$base64": base64.b64encode(content.encode()).decode()}}


def owner_not_found_cases() -> list[tuple[dict, dict]]:
    """The schema-valid bodies naming an owner that real runs saw refused with 422 owner_not_found: 3 POST, 1 PATCH."""
    cases = [(c, r) for c, r, _ in recorded("projects-owner-not-found-excused") if r["status_code"] == 422]
    assert [c["method"] for c, _ in cases] == ["POST", "POST", "POST", "PATCH"]
    assert all(c["meta"]["generation"]["mode"] == "positive" and "owner_id" in c["body"] for c, _ in cases)
    assert all(fuzz._error_code(r) == "owner_not_found" for _, r in cases)
    return cases


def label(case: dict) -> str:
    return f"{case['method']} {case['path']}"


def test_the_exception_is_a_422_owner_not_found_to_an_owner_id_on_the_two_operations_that_check_one() -> None:
    cases = owner_not_found_cases()
    for case, response in cases:
        assert fuzz_hooks.excused(label(case), case["body"], 422, fuzz._content(response))
        assert not fuzz_hooks.excused(label(case), case["body"], 422, VALIDATION_ERROR)
        assert not fuzz_hooks.excused(label(case), case["body"], 422, "owner_not_found")  # not an Atlas error body
        for status in (400, 404, 409, 500, 502):
            assert not fuzz_hooks.excused(label(case), case["body"], status, OWNER_NOT_FOUND)
        without_owner = {k: v for k, v in case["body"].items() if k != "owner_id"}
        assert not fuzz_hooks.excused(label(case), without_owner, 422, OWNER_NOT_FOUND)  # no owner was checked
    for _, method, path, _, body in OTHER_OPERATIONS:
        assert not fuzz_hooks.excused(f"{method} {path}", {**(body or {}), "owner_id": 1}, 422, OWNER_NOT_FOUND)
    assert {label(c) for c, _ in cases} == fuzz_hooks.OPERATIONS


def test_a_run_with_the_exception_passes_and_the_table_names_it() -> None:
    result = fuzz.read_events(lines("projects-owner-not-found-excused"), fuzz.FuzzResult("projects", 0))
    result.required = {fuzz_hooks.CHECK}
    assert result.verdict() == []
    assert (result.cases, result.failing_cases, result.excused) == (6, 0, 4)  # the four refusals of the record
    assert fuzz_hooks.CHECK in result.checks
    assert "positive_data_acceptance" not in result.checks
    assert {"negative_data_rejection", "response_schema_conformance", "status_code_conformance"} <= result.checks
    users = fuzz.read_events(lines("users-list-clean"), fuzz.FuzzResult("users", 0))
    assert "positive_data_acceptance" in users.checks  # users: unchanged
    assert fuzz_hooks.CHECK not in users.checks
    table = fuzz.fuzz_table([users, result])
    assert [row[-1] for row in table.rows] == ["pass", "pass"]
    notes = "\n".join(table.notes)
    assert "(projects: --exclude-checks positive_data_acceptance, replaced as below)" in notes
    assert f"checks run (users): {', '.join(sorted(users.checks))}\n" in notes
    assert f"checks run (projects): {', '.join(sorted(result.checks))}\n" in notes
    [exception] = [note for note in table.notes if "the one exception" in note]
    assert exception.startswith(
        "projects: the one exception: positive_data_acceptance is replaced by"
        " positive_data_acceptance_except_owner_not_found (evidence/fuzz_hooks.py)"
    )
    assert "422 error.code owner_not_found on PATCH /api/v1/projects/{project_id} and POST /api/v1/projects" in (
        exception
    )
    assert exception.endswith(
        "a 422 validation_error included, still fails; 4 schema-valid case(s) got that answer and passed"
    )


def test_the_replacement_check_must_run() -> None:
    # The events of a run without the hooks: positive_data_acceptance ran, and failed, the replacement did not.
    result = read("projects-post-owner-not-found", 1)
    result.required = {fuzz_hooks.CHECK}
    assert result.excused == 0
    assert result.verdict() == [
        "schemathesis exited 1",
        f"check {fuzz_hooks.CHECK} never ran",
        "3 case(s) failed positive_data_acceptance",
    ]


# The check itself, as schemathesis runs it: the recorded cases rebuilt in .venv-fuzz and judged by
# schemathesis' own positive_data_acceptance and by the check evidence/fuzz_hooks.py registers.

JUDGE = r"""
import base64, json, sys

import requests
import schemathesis
from schemathesis.checks import CHECKS
from schemathesis.core import NOT_SET
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.transport import Response
from schemathesis.generation import GenerationMode
from schemathesis.generation.meta import (
    CaseMetadata, ComponentInfo, GenerationInfo, PhaseInfo, TestPhase, build_phase_data,
)
from schemathesis.specs.openapi.checks import positive_data_acceptance

data = json.load(sys.stdin)
# Loading a schema loads SCHEMATHESIS_HOOKS, as `schemathesis run` does.
schemas = {name: schemathesis.openapi.from_dict(document) for name, document in data["documents"].items()}
[replacement] = CHECKS.get_by_names([data["check"]])
verdicts = []
for item in data["cases"]:
    value, recorded = item["case"], item["response"]
    meta = value["meta"]
    phase = TestPhase(meta["phase"]["name"])
    case = schemas[item["document"]][value["path"]][value["method"]].Case(
        path_parameters=value.get("path_parameters"),
        query=value.get("query"),
        body=value.get("body", NOT_SET),
        media_type=value.get("media_type"),
        _meta=CaseMetadata(
            generation=GenerationInfo(time=0.0, mode=GenerationMode(meta["generation"]["mode"])),
            components={
                ParameterLocation(where): ComponentInfo(mode=GenerationMode(component["mode"]))
                for where, component in meta["components"].items()
            },
            phase=PhaseInfo(name=phase, data=build_phase_data(phase, meta["phase"]["data"].get("description"))),
        ),
    )
    body = {} if value.get("body") is None else {"json": value["body"]}
    request = requests.Request(value["method"], "http://127.0.0.1:9" + case.formatted_path, **body).prepare()
    response = Response(
        status_code=recorded["status_code"], headers=recorded["headers"],
        content=base64.b64decode(recorded["content"]["$base64"]), request=request, elapsed=0.0, verify=False,
    )
    verdict = {}
    for check in (positive_data_acceptance, replacement):
        try:
            case.validate_response(response, checks=[check])
        except FailureGroup as group:
            verdict[check.__name__] = [type(failure).__name__ for failure in group.exceptions]
        else:
            verdict[check.__name__] = []
    verdicts.append(verdict)
json.dump(verdicts, sys.stdout)
"""
FUZZ_PYTHON = os.path.join(os.path.dirname(fuzz.SCHEMATHESIS), "python")
needs_schemathesis = pytest.mark.skipif(
    not os.access(FUZZ_PYTHON, os.X_OK), reason="no .venv-fuzz: scripts/fuzz-venv.sh (make fuzz runs it) makes it"
)
REJECTED = ["RejectedPositiveData"]  # schemathesis' failure "Schema-valid request rejected"


def documents() -> dict[str, dict]:
    """The services' OpenAPI documents, built as each app builds the one it serves at /openapi.json."""
    from projects import VERSION as PROJECTS_VERSION
    from projects.api import api as projects_api
    from users import VERSION as USERS_VERSION
    from users.api import api as users_api

    return {
        "projects": openapi.build("Atlas projects service", PROJECTS_VERSION, [projects_api]),
        "users": openapi.build("Atlas users service", USERS_VERSION, [users_api]),
    }


def judge(tmp_path, cases: list[tuple[str, dict, dict]]) -> list[dict[str, list[str]]]:
    """Each (document, recorded case, recorded response) judged by schemathesis 4.32.5 in .venv-fuzz, with the
    hooks loaded as `make fuzz` loads them: {check name: the failures it raised}."""
    data = {
        "documents": documents(),
        "check": fuzz_hooks.CHECK,
        "cases": [{"document": d, "case": c, "response": r} for d, c, r in cases],
    }
    env = {**os.environ, "SCHEMATHESIS_HOOKS": fuzz.HOOKS}
    proc = subprocess.run(
        [FUZZ_PYTHON, "-c", JUDGE], input=json.dumps(data), cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    verdicts = json.loads(proc.stdout)
    assert [set(v) for v in verdicts] == [{"positive_data_acceptance", fuzz_hooks.CHECK}] * len(cases)
    return verdicts


@needs_schemathesis
@pytest.mark.parametrize(
    ("run", "refused"),
    [
        ("projects-post-owner-not-found", 3),  # "1 unique failure": the 3 POSTs
        ("projects-owner-not-found-excused", 4),  # as the run without the hooks: 3 POST, 1 PATCH
    ],
)
def test_the_check_accepts_the_owner_not_found_refusals_of_real_runs_and_judges_the_rest_as_schemathesis(
    run, refused, tmp_path
) -> None:
    cases = recorded(run)
    verdicts = judge(tmp_path, [("projects", c, r) for c, r, _ in cases])
    for (case, response, checks), verdict in zip(cases, verdicts, strict=True):
        owner_not_found = response["status_code"] == 422 and fuzz._error_code(response) == "owner_not_found"
        positive = case["meta"]["generation"]["mode"] == "positive"
        # schemathesis' own check, rebuilt here, says what it said in the real run (when it ran there)
        builtin = REJECTED if owner_not_found and positive else []
        assert verdict["positive_data_acceptance"] == builtin, case
        if "positive_data_acceptance" in checks:
            assert checks["positive_data_acceptance"] == ("failure" if builtin else "success")
        # the replacement passes every case of these runs, as it did in the real one (when it ran there)
        assert verdict[fuzz_hooks.CHECK] == [], case
        if fuzz_hooks.CHECK in checks:
            assert checks[fuzz_hooks.CHECK] == "success"
    assert sum(v["positive_data_acceptance"] == REJECTED for v in verdicts) == refused


@needs_schemathesis
def test_the_check_still_fails_a_validation_error_and_every_other_refusal_of_valid_data(tmp_path) -> None:
    owner_cases = owner_not_found_cases()
    patch_404 = next(
        (c, r) for c, r, _ in recorded("projects-owner-not-found-excused")
        if c["method"] == "PATCH" and r["status_code"] == 404 and c["meta"]["generation"]["mode"] == "positive"
    )  # fmt: skip
    assert "owner_id" not in patch_404[0]["body"]
    cases = [
        # the owner_id 5.0 kind of bug: a schema-valid body refused as invalid
        *[("projects", c, answered(r, 422, VALIDATION_ERROR)) for c, r in owner_cases],
        # owner_not_found, but not as a 422, or not as an Atlas error body
        *[("projects", c, answered(r, status, OWNER_NOT_FOUND)) for c, r in owner_cases[-2:] for status in (400, 415)],
        ("projects", owner_cases[0][0], answered(owner_cases[0][1], 422, "owner_not_found")),
        # owner_not_found to a PATCH that names no owner: no owner was checked, so the answer is wrong
        ("projects", patch_404[0], answered(patch_404[1], 422, OWNER_NOT_FOUND)),
    ]
    verdicts = judge(tmp_path, cases)
    assert verdicts == [{"positive_data_acceptance": REJECTED, fuzz_hooks.CHECK: REJECTED}] * len(cases)


@needs_schemathesis
def test_the_check_fails_a_422_owner_not_found_on_any_other_operation(tmp_path) -> None:
    template, response = owner_not_found_cases()[0]  # a recorded positive case and its 422 owner_not_found
    cases = []
    for document, method, path, parameters, body in OTHER_OPERATIONS:
        case = {**template, "method": method, "path": path, "path_parameters": parameters}
        case.pop("body")
        case.pop("media_type")
        if body is not None:  # naming an owner too, so that only the operation differs from the exception
            case.update(body={**body, "owner_id": 1}, media_type="application/json")
        case["meta"] = {**template["meta"], "components": {"body" if body else "query": {"mode": "positive"}}}
        cases.append((document, case, response))
    verdicts = judge(tmp_path, cases)
    assert verdicts == [{"positive_data_acceptance": REJECTED, fuzz_hooks.CHECK: REJECTED}] * len(cases)


@needs_schemathesis
def test_outside_its_exception_the_check_agrees_with_schemathesis(tmp_path) -> None:
    """Accepted answers stay accepted, and invalid input is not this check's business (negative_data_rejection's)."""
    (case, response), negative = owner_not_found_cases()[0], recorded("projects-owner-not-found-excused")[4]
    assert negative[0]["meta"]["generation"]["mode"] == "negative"
    cases = [
        ("projects", case, answered(response, 201, json.dumps({"id": 1}))),
        ("projects", case, answered(response, 409, json.dumps({"error": {"code": "conflict", "message": "x"}}))),
        ("projects", negative[0], answered(negative[1], 422, VALIDATION_ERROR)),
        ("projects", negative[0], answered(negative[1], 200, json.dumps({}))),
    ]
    verdicts = judge(tmp_path, cases)
    assert verdicts == [{"positive_data_acceptance": [], fuzz_hooks.CHECK: []}] * len(cases)
