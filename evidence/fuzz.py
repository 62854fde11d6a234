"""`make fuzz`: bad input, measured.

1. schemathesis (its own virtualenv, .venv-fuzz) against each running service's /openapi.json, a bounded
   number of examples per operation: every response must be below 500 and match the documented API
   (status code, content type, body schema).
2. One table of the bad-input cases the test suites hold, for the chart, the playbooks and the API,
   counted from pytest's own collection (so the figures follow the tests, nothing is hard-coded).

Exit status 1 when any response was a 5xx or broke the documented API.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field

from evidence import report
from evidence.net import require_loopback_url
from evidence.report import BUILD_DIR, Table
from evidence.stack import Stack

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMATHESIS = os.path.join(REPO, ".venv-fuzz", "bin", "schemathesis")
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("FUZZ_SEED", "1"))  # fixed by default so a failure reproduces; vary it to explore
TIME_LIMIT = 600  # seconds per service: the bound if max-examples ever is not
# The checks that mean "the response broke the documented API"; not_a_server_error counts 5xx.
CONFORMANCE = ("status_code_conformance", "content_type_conformance", "response_schema_conformance")
CHECKS = ("not_a_server_error", *CONFORMANCE)

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
    exit_code: int
    cases: int = 0
    server_errors: int = 0
    broken: Counter = field(default_factory=Counter)  # check name -> responses that failed it
    examples: list[str] = field(default_factory=list)  # a few failing requests, for the report


def _read_events(path: str, result: FuzzResult) -> None:
    """Fold schemathesis' NDJSON event stream into counts per response (each test case counted once)."""
    seen: dict[str, tuple[int | None, list[str], str]] = {}
    with open(path) as f:
        for line in f:
            event = json.loads(line).get("ScenarioFinished")
            if not event:
                continue
            recorder = event["recorder"]
            for case_id, checks in recorder.get("checks", {}).items():
                interaction = recorder.get("interactions", {}).get(case_id) or {}
                status = (interaction.get("response") or {}).get("status_code")
                failed = [c["name"] for c in checks if c["status"] == "failure"]
                request = interaction.get("request") or {}
                seen[case_id] = (status, failed, f"{request.get('method', '?')} {request.get('uri', '?')}")
    result.cases = len(seen)
    for status, failed, where in seen.values():
        if status is not None and status >= 500:
            result.server_errors += 1
        for name in failed:
            if name in CONFORMANCE:
                result.broken[name] += 1
        if failed and len(result.examples) < 5:
            result.examples.append(f"{where[:160]} -> {status} ({', '.join(failed)})")


def schemathesis(service: str, base_url: str) -> FuzzResult:
    schema_url = base_url + "/openapi.json"
    require_loopback_url(schema_url)
    with tempfile.TemporaryDirectory(prefix="atlas-fuzz-") as out:
        cmd = [
            SCHEMATHESIS, "run", schema_url, "--checks", ",".join(CHECKS), f"--max-examples={EXAMPLES}",
            f"--seed={SEED}", "--report", "ndjson", "--report-dir", out, "--no-color", "--request-timeout=10",
        ]  # fmt: skip
        os.makedirs(BUILD_DIR, exist_ok=True)
        # cwd: schemathesis keeps its crash cache in ./.schemathesis; build/ is ignored by git
        proc = subprocess.run(cmd, cwd=BUILD_DIR, capture_output=True, text=True, timeout=TIME_LIMIT, check=False)
        log = os.path.join(BUILD_DIR, f"fuzz-{service}.log")
        with open(log, "w") as f:
            f.write(proc.stdout + proc.stderr)  # schemathesis' own report: failures with curl to replay them
        result = FuzzResult(service, proc.returncode)
        events = glob.glob(os.path.join(out, "*.ndjson"))
        if not events:
            raise RuntimeError(f"schemathesis wrote no event stream for {service}; see {os.path.relpath(log)}")
        _read_events(events[0], result)
    return result


def count_collected(path: str, keyword: str) -> int:
    """How many test cases pytest collects under ``path`` whose ids match ``-k keyword``."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", path, "-k", keyword],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if proc.returncode not in (0, 5):  # 5: nothing matched, a count of 0
        raise RuntimeError(f"pytest could not collect {path}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return sum(1 for line in proc.stdout.splitlines() if "::" in line)


def main() -> int:
    if not os.access(SCHEMATHESIS, os.X_OK):
        print("schemathesis not found: run scripts/fuzz-venv.sh (make fuzz does)", file=sys.stderr)
        return 2
    print(f"[fuzz] schemathesis, {EXAMPLES} examples per operation, seed {SEED}", flush=True)
    with Stack() as stack:
        users = stack.service("users")
        projects = stack.service("projects", {"USERS_SERVICE_URL": users.base_url})
        results = []
        for name, svc in [("users", users), ("projects (owner check on)", projects)]:
            print(f"[fuzz] {name}", flush=True)
            results.append(schemathesis(name.split()[0], svc.base_url))

    fuzz = Table(
        "schemathesis against each service's /openapi.json",
        ["service", "test cases", "5xx responses", "undocumented status", "wrong content type", "body off schema"],
        notes=[
            f"{EXAMPLES} examples per operation and phase (examples, coverage, fuzzing, stateful), seed {SEED};"
            " the full report, with a curl line per failure, is in build/fuzz-<service>.log",
        ],
    )
    for r in results:
        fuzz.add(
            r.service, r.cases, r.server_errors, r.broken["status_code_conformance"],
            r.broken["content_type_conformance"], r.broken["response_schema_conformance"],
        )  # fmt: skip
        fuzz.notes += [f"{r.service}: {example}" for example in r.examples]

    print("[fuzz] counting the bad-input cases of the test suites", flush=True)
    cases = Table("Bad-input cases, all layers", ["layer", "cases", "counted as"])
    total = 0
    for layer, path, keyword in BAD_INPUT_TESTS:
        n = count_collected(path, keyword)
        total += n
        cases.add(layer, n, f"pytest --collect-only {path} -k '{keyword}'")
    for r in results:
        cases.add(f"API: schemathesis, {r.service}", r.cases, "generated test cases (valid and invalid input)")
        total += r.cases
    cases.add("total", total, "")

    report.write("fuzz.md", "make fuzz", [fuzz, cases])
    bad = [r for r in results if r.server_errors or sum(r.broken.values())]
    for r in bad:
        print(
            f"FAILED: {r.service}: {r.server_errors} 5xx, {dict(r.broken)} (build/fuzz-{r.service}.log)",
            file=sys.stderr,
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
