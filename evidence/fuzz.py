"""`make fuzz`: bad input, measured.

1. schemathesis (its own virtualenv, .venv-fuzz) against each running service's /openapi.json with every check
   it has (`--checks all`), a bounded number of examples per operation; the verdict is read from its exit status
   and from its NDJSON event stream, which also says which cases it generated as invalid input. On projects one
   check runs with a documented exception (NARROWED): positive_data_acceptance is replaced by
   evidence/fuzz_hooks.py's check, the same but for the 422 `owner_not_found` answer to an owner_id that no user
   has, which no JSON schema can foresee.
2. One table of the bad-input cases of every layer: the test suites', counted from pytest's own collection (so
   the figures follow the tests, nothing is hard-coded), and the invalid-input cases schemathesis sent.

Exit status 1 when schemathesis failed a check (a 5xx, a response off the documented API, valid input refused,
invalid input accepted, ...), exited non-zero, reported an error, or ran no test case for a service.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from evidence import fuzz_hooks, report
from evidence.net import require_loopback_url
from evidence.report import BUILD_DIR, Table
from evidence.stack import Stack

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMATHESIS = os.path.join(REPO, ".venv-fuzz", "bin", "schemathesis")
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("FUZZ_SEED", "1"))  # fixed by default so a failure reproduces; vary it to explore
TIME_LIMIT = 600  # seconds per service: the bound if max-examples ever is not
EXAMPLES_SHOWN = 5  # failing requests quoted per service in the report
HOOKS = os.path.join(REPO, "evidence", "fuzz_hooks.py")  # loaded by schemathesis through SCHEMATHESIS_HOOKS
# service -> (schemathesis check excluded, the check of fuzz_hooks.py that replaces it, which must run).
NARROWED = {"projects": (fuzz_hooks.REPLACES, fuzz_hooks.CHECK)}

# Bad-input cases per layer: (layer, test path, pytest -k expression). The expressions match the test
# names that feed a layer wrong input and expect a refusal; they are printed beside the counts.
BAD_INPUT_TESTS = [
    ("chart: values.schema.json and chart checks", "tests/chart", "refuse"),
    ("playbooks: group_vars validation", "tests/provisioning", "bad or missing"),
    ("services: configuration (environment)", "tests/services", "bad_values or bad_setting or refuses"),
    (
        "API: error cases in tests/services",
        "tests/services",
        "invalid or malformed or oversized or duplicate or unknown",
    ),
]


@dataclass
class FuzzResult:
    service: str
    exit_code: int | None  # None: stopped at TIME_LIMIT
    finished: bool = False  # the stream reached EngineFinished (a cut-short run reports too little)
    cases: int = 0
    invalid: int = 0  # cases generated as invalid input (generation mode "negative")
    server_errors: int = 0
    failing_cases: int = 0  # cases that failed at least one check
    failed: Counter = field(default_factory=Counter)  # check name -> cases that failed it
    answers: Counter = field(default_factory=Counter)  # "<status> <error code>" of the failing cases
    checks: set[str] = field(default_factory=set)  # the checks that ran
    required: set[str] = field(default_factory=set)  # checks that must be among them (the NARROWED replacement)
    excused: int = 0  # schema-valid cases answered 422 owner_not_found that fuzz_hooks.CHECK passed by its exception
    crashed: Counter = field(default_factory=Counter)  # check name -> cases it could not judge (an error in it)
    errors: list[str] = field(default_factory=list)  # schemathesis' own errors: the run proves less than it says
    examples: list[str] = field(default_factory=list)  # a few failing requests, for the report

    def verdict(self) -> list[str]:
        """Why this run fails, in words; empty when it passes."""
        reasons = []
        if self.exit_code is None:
            reasons.append(f"schemathesis did not finish within {TIME_LIMIT}s")
        elif self.exit_code != 0:
            reasons.append(f"schemathesis exited {self.exit_code}")
        if not self.finished:
            reasons.append("its event stream stops before the run's end")
        if self.cases == 0:
            reasons.append("no test case ran")
        reasons += [f"check {check} never ran" for check in sorted(self.required - self.checks)]
        reasons += [f"{n} case(s) failed {check}" for check, n in sorted(self.failed.items())]
        reasons += [f"check {check} crashed on {n} case(s)" for check, n in sorted(self.crashed.items())]
        reasons += self.errors[:EXAMPLES_SHOWN]
        if len(self.errors) > EXAMPLES_SHOWN:
            reasons.append(f"{len(self.errors) - EXAMPLES_SHOWN} more errors")
        return reasons


def _content(response: dict) -> bytes:
    """A recorded response's body (the recorder keeps bodies as base64)."""
    try:
        return base64.b64decode(response["content"]["$base64"])
    except (KeyError, TypeError, ValueError):
        return b""


def _error_code(response: dict) -> str:
    """The `error.code` of an Atlas error body, or ""."""
    return fuzz_hooks.error_code(_content(response)) or ""


def _read_scenario(recorder: dict, result: FuzzResult) -> None:
    interactions = recorder.get("interactions", {})
    cases = recorder.get("cases", {})
    for case in cases.values():
        result.cases += 1
        meta = case["value"].get("meta") or {}
        if meta.get("generation", {}).get("mode") == "negative":
            result.invalid += 1
    for case_id, checks in recorder.get("checks", {}).items():
        interaction = interactions.get(case_id) or {}
        response = interaction.get("response") or {}
        status = response.get("status_code")
        if status is not None and status >= 500:
            result.server_errors += 1
        result.checks.update(c["name"] for c in checks)
        if _excused(cases.get(case_id, {}).get("value") or {}, response, checks):
            result.excused += 1
        failed = sorted({c["name"] for c in checks if c["status"] == "failure"})
        result.crashed.update({c["name"] for c in checks if c["status"] == "error"})
        if not failed:
            continue
        result.failing_cases += 1
        result.failed.update(failed)
        answer = f"{status} {_error_code(response)}".strip()
        result.answers[answer] += 1
        request = interaction.get("request") or {}
        where = f"{request.get('method', '?')} {request.get('uri', '?')}"
        example = f"{where[:160]} -> {answer} ({', '.join(failed)})"
        if example not in result.examples and len(result.examples) < EXAMPLES_SHOWN:
            result.examples.append(example)


def _excused(case: dict, response: dict, checks: list[dict]) -> bool:
    """Whether fuzz_hooks.CHECK passed this case by its exception: valid data refused with owner_not_found."""
    passed = any(c["name"] == fuzz_hooks.CHECK and c["status"] == "success" for c in checks)
    positive = (case.get("meta") or {}).get("generation", {}).get("mode") == "positive"
    operation = f"{case.get('method', '')} {case.get('path', '')}"
    return (
        passed
        and positive
        and fuzz_hooks.excused(operation, case.get("body"), response.get("status_code"), _content(response))
    )


def read_events(lines: Iterable[str], result: FuzzResult) -> FuzzResult:
    """Fold schemathesis' NDJSON event stream (one event per line, `{"<EventName>": {...}}`) into ``result``."""
    for line in lines:
        try:
            [(name, event)] = json.loads(line).items()
        except ValueError:  # a line cut off when the run was stopped
            result.errors.append(f"unreadable event: {line[:80]!r}")
            continue
        if name in ("ScenarioFinished", "FuzzScenarioFinished"):
            _read_scenario(event.get("recorder", {}), result)
        elif name == "NonFatalError":
            error = event.get("value") or {}
            result.errors.append(f"error in {event.get('label', '?')}: {error.get('type')}: {error.get('message')}")
        elif name == "FatalError":
            error = event.get("exception") or {}
            result.errors.append(f"fatal error: {error.get('type')}: {error.get('message')}")
        elif name == "Interrupted":
            result.errors.append("the run was interrupted")
        elif name == "EngineFinished":
            result.finished = True
            for failure in event.get("failures", []):  # checks of the whole run, not of a case
                result.failed[failure.get("title", "run-level check")] += 1
    return result


def schemathesis(service: str, base_url: str, headers: dict[str, str] | None = None) -> FuzzResult:
    """One service's run; ``headers`` go on every request (a bearer token where tokens are required: the
    ignored_auth check then sends some without it, and expects them refused)."""
    schema_url = base_url + "/openapi.json"
    require_loopback_url(schema_url)
    log = os.path.join(BUILD_DIR, f"fuzz-{service}.log")
    env = {k: v for k, v in os.environ.items() if k != "SCHEMATHESIS_HOOKS"}  # no hooks but ours
    with tempfile.TemporaryDirectory(prefix="atlas-fuzz-") as out:
        # --continue-on-failure: one failing case does not end its operation's test, so the counts are whole.
        cmd = [
            SCHEMATHESIS, "run", schema_url, "--checks", "all", "--continue-on-failure", f"--max-examples={EXAMPLES}",
            f"--seed={SEED}", "--report", "ndjson", "--report-dir", out, "--no-color", "--request-timeout=10",
        ]  # fmt: skip
        for name, value in (headers or {}).items():
            cmd += ["--header", f"{name}: {value}"]
        required = set()
        if service in NARROWED:
            excluded, replacement = NARROWED[service]
            cmd += ["--exclude-checks", excluded]
            env["SCHEMATHESIS_HOOKS"] = HOOKS  # registers the replacement, which --checks all then runs
            required.add(replacement)
        os.makedirs(BUILD_DIR, exist_ok=True)
        try:
            # cwd: schemathesis keeps its crash cache in ./.schemathesis; build/ is ignored by git
            proc = subprocess.run(
                cmd, cwd=BUILD_DIR, env=env, capture_output=True, text=True, timeout=TIME_LIMIT, check=False
            )
            exit_code, output = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            exit_code, output = None, _text(exc.stdout) + _text(exc.stderr)
        with open(log, "w") as f:
            f.write(output)  # schemathesis' own report: failures with curl to replay them
        result = FuzzResult(service, exit_code, required=required)
        events = glob.glob(os.path.join(out, "*.ndjson"))
        if not events:
            result.errors.append("schemathesis wrote no event stream")
        for path in events:
            with open(path) as f:
                read_events(f, result)
    return result


def _text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def count_collected(path: str, keyword: str) -> int:
    """How many test cases pytest collects under ``path`` whose ids match ``-k keyword``."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", path, "-k", keyword],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if proc.returncode not in (0, 5):  # 5: nothing matched, a count of 0
        raise RuntimeError(f"pytest could not collect {path}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return sum(1 for line in proc.stdout.splitlines() if "::" in line)


def fuzz_table(results: list[FuzzResult]) -> Table:
    """The schemathesis table: a row per service; notes say which checks ran, the exception, what failed."""
    narrowed = ", ".join(f"{service}: --exclude-checks {excluded}" for service, (excluded, _) in NARROWED.items())
    fuzz = Table(
        "schemathesis against each service's /openapi.json, every check",
        ["service", "test cases", "invalid input", "5xx responses", "cases failing a check", "exit status", "verdict"],
        notes=[
            f"{EXAMPLES} examples per operation and phase (examples, coverage, fuzzing, stateful), seed {SEED},"
            f" --checks all --continue-on-failure ({narrowed}, replaced as below); the full report, with a curl"
            " line per failure, is in build/fuzz-<service>.log",
        ],
    )
    for checks in dict.fromkeys(frozenset(r.checks) for r in results):
        services = ", ".join(r.service for r in results if r.checks == checks)
        fuzz.notes.append(f"checks run ({services}): {', '.join(sorted(checks)) or 'none'}")
    for r in results:
        if r.service in NARROWED:
            excluded, replacement = NARROWED[r.service]
            operations = " and ".join(sorted(fuzz_hooks.OPERATIONS))
            fuzz.notes.append(
                f"{r.service}: the one exception: {excluded} is replaced by {replacement} (evidence/fuzz_hooks.py):"
                f" schemathesis' own {excluded}, except that a schema-valid body with owner_id answered"
                f" {fuzz_hooks.STATUS} error.code {fuzz_hooks.ERROR_CODE} on {operations}"
                f" passes (no user has that id, as their {fuzz_hooks.STATUS} documents; no JSON schema can say a user"
                f" exists); any other refusal of valid data, a {fuzz_hooks.STATUS} validation_error included, still"
                f" fails; {r.excused} schema-valid case(s) got that answer and passed"
            )

    for r in results:
        reasons = r.verdict()
        fuzz.add(
            r.service, r.cases, r.invalid, r.server_errors, r.failing_cases,
            "timed out" if r.exit_code is None else r.exit_code, "FAIL" if reasons else "pass",
        )  # fmt: skip
        if r.failed:
            failed = ", ".join(f"{check} {n}" for check, n in sorted(r.failed.items()))
            answers = ", ".join(f"{answer} x{n}" for answer, n in r.answers.most_common())
            fuzz.notes.append(f"{r.service}: failed checks: {failed}; their answers: {answers}")
        fuzz.notes += [f"{r.service}: {problem}" for problem in r.errors[:EXAMPLES_SHOWN]]
        fuzz.notes += [f"{r.service}: {example}" for example in r.examples]
    return fuzz


def main() -> int:
    if not os.access(SCHEMATHESIS, os.X_OK):
        print("schemathesis not found: run scripts/fuzz-venv.sh (make fuzz does)", file=sys.stderr)
        return 2
    print(f"[fuzz] schemathesis, {EXAMPLES} examples per operation, seed {SEED}", flush=True)
    with Stack() as stack:
        users = stack.service("users")
        projects = stack.service("projects", {"USERS_SERVICE_URL": users.base_url})
        # Tokens required: users checking a real auth service's tokens, and auth's own admin API.
        issuer = stack.auth(" ".join(("users:read", "users:write", "auth:admin")))
        guarded = stack.service("users", issuer.required)
        results = []
        for name, svc, headers in [
            ("users", users, None),
            ("projects (owner check on)", projects, None),
            ("users-tokens (tokens required)", guarded, issuer.headers),
            ("auth (admin API, tokens required)", issuer.service, issuer.headers),
        ]:
            print(f"[fuzz] {name}", flush=True)
            results.append(schemathesis(name.split()[0], svc.base_url, headers))

    fuzz = fuzz_table(results)

    print("[fuzz] counting the bad-input cases of the test suites", flush=True)
    cases = Table("Bad-input cases, all layers", ["layer", "cases", "counted as"])
    total = 0
    for layer, path, keyword in BAD_INPUT_TESTS:
        n = count_collected(path, keyword)
        total += n
        cases.add(layer, n, f"pytest --collect-only {path} -k '{keyword}'")
    for r in results:
        cases.add(
            f"API: schemathesis, {r.service}", r.invalid,
            f"the test cases it generated as invalid input (generation mode negative), of {r.cases}",
        )  # fmt: skip
        total += r.invalid
    cases.add("total", total, "")

    report.write("fuzz.md", "make fuzz", [fuzz, cases])
    failed = [(r, r.verdict()) for r in results]
    for r, reasons in failed:
        if reasons:
            print(f"FAILED: {r.service}: {'; '.join(reasons)} (build/fuzz-{r.service}.log)", file=sys.stderr)
    return 1 if any(reasons for _, reasons in failed) else 0


if __name__ == "__main__":
    sys.exit(main())
