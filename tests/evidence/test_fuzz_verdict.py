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
  exit 2.
One change since: the 32-hex-digit ids (of events, and X-Request-ID values) are spelt as dashed UUIDs, the same
values in the form detect-secrets (tests/security/test_secrets.py) knows is not a secret.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from evidence import fuzz

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
    ],
)
def test_only_cases_generated_as_invalid_input_count_as_bad_input(name: str, cases: int, invalid: int) -> None:
    result = read(name, 0)
    assert (result.cases, result.invalid) == (cases, invalid)


def test_schemathesis_runs_every_check_and_its_exit_status_and_events_both_count(monkeypatch, tmp_path) -> None:
    """The glue: the command line, and a run's exit status and events reaching the verdict."""
    seen = []

    def run(cmd, **kwargs):
        seen.append(cmd)
        report_dir = cmd[cmd.index("--report-dir") + 1]
        with open(os.path.join(report_dir, "events.ndjson"), "w") as f:
            f.writelines(lines("projects-post-owner-not-found"))
        return subprocess.CompletedProcess(cmd, 1, "schemathesis' report", "")

    monkeypatch.setattr(fuzz.subprocess, "run", run)
    monkeypatch.setattr(fuzz, "BUILD_DIR", str(tmp_path))
    result = fuzz.schemathesis("projects", "http://127.0.0.1:1")
    [cmd] = seen
    assert cmd[cmd.index("--checks") + 1] == "all"
    assert "--continue-on-failure" in cmd
    assert result.verdict() == ["schemathesis exited 1", "3 case(s) failed positive_data_acceptance"]
    assert (tmp_path / "fuzz-projects.log").read_text() == "schemathesis' report"


def test_a_run_that_wrote_no_events_fails(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(fuzz.subprocess, "run", lambda cmd, **kwargs: subprocess.CompletedProcess(cmd, 0, "", ""))
    monkeypatch.setattr(fuzz, "BUILD_DIR", str(tmp_path))
    assert fuzz.schemathesis("users", "http://127.0.0.1:1").verdict() == [
        "its event stream stops before the run's end",
        "no test case ran",
        "schemathesis wrote no event stream",
    ]
