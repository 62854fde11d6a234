"""`make bench`: how fast Atlas is on this machine, measured; prints tables and writes build/bench.md.

It asserts nothing about speed (figures vary by machine): the goals of issue 14 are ratios measured in one
run, plus an absolute p99, a memory and a start time, each marked met or missed. All load goes to
127.0.0.1, every run is bounded: BENCH_SECONDS (default 8) per wrk/pgbench run, about four minutes in all.

BENCH_SHORT=1 is the mode `make test` runs (tests/evidence/test_bench_short.py): every figure once, a
second per run, no `make render` runs. It fails only when a figure cannot be measured, never on speed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from evidence import db, pgbench, pooltrap, proc, report, wrk
from evidence.report import Table
from evidence.stack import THREADS, WORKERS, Stack
from tests.support.processes import SERVERS, ServiceProcess

SHORT = os.environ.get("BENCH_SHORT") == "1"
SECONDS = int(os.environ.get("BENCH_SECONDS", "1" if SHORT else "8"))
CONNECTIONS = 32
WRK_THREADS = 2
READYZ_STARTS = 1 if SHORT else 3
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SERVER = "granian"  # what `python -m <service> serve` runs (atlas_common/server.py)
HELLO_APP = "evidence.hello:app"

USER_BODY = json.dumps({"email": "bench-{n}@example.test", "name": "Bench {n}"})
PROJECT_BODY = '{"name": "Bench {n}", "owner_id": {id}}'  # {id}: an existing user, so the owner check passes


class NotMeasured(RuntimeError):
    """A figure could not be taken (no request answered, a process did not start): `make bench` fails."""


@dataclass(frozen=True)
class Run:
    wrk: wrk.WrkResult
    connections_opened: int | None
    cpu_us_per_request: float  # of every service process that served it; unlike req/s, barely moved by load


def _measure(
    url: str,
    serving: list[ServiceProcess],
    counter: db.SessionCounter | None = None,
    connections: int = CONNECTIONS,
    **kwargs,
) -> Run:
    """One wrk run, the database connections opened during it, and the services' CPU time per request."""
    before = counter.read() if counter else None
    cpu_before = sum(s.cpu_seconds() for s in serving)
    result = wrk.run(url, duration=SECONDS, threads=WRK_THREADS, connections=connections, **kwargs)
    cpu = sum(s.cpu_seconds() for s in serving) - cpu_before
    if result.requests == 0:
        raise NotMeasured(f"wrk got no answer from {url}")
    opened = counter.read() - before if counter else None
    return Run(result, opened, 1e6 * cpu / result.requests)


def _user_ids(env: dict[str, str], limit: int = 2000) -> list[str]:
    with db.connection(env) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM users ORDER BY id LIMIT %s", (limit,))
        return [str(row[0]) for row in cur.fetchall()]


def _worker_memory(service: ServiceProcess) -> dict[str, float]:
    """The largest RSS and PSS among the service's workers, in MiB."""
    sizes = [proc.memory_mb(pid) for pid in service.worker_pids()]
    if not sizes:
        raise NotMeasured(f"{service.service} has no worker to measure")
    return {"rss": max(s["rss"] for s in sizes), "pss": max(s["pss"] for s in sizes)}


def _readyz_seconds(stack: Stack) -> list[tuple[float, float]]:
    """Fresh users processes: (wall seconds from spawning the server to the first 200 on /readyz, CPU seconds
    it used until then). The CPU figure does not grow when other processes crowd the machine."""
    times = []
    for _ in range(READYZ_STARTS):
        svc = stack.service("users", wait=False)
        try:
            wall = svc.wait_for("/readyz", timeout=30)
            times.append((wall, svc.cpu_seconds()))
        finally:
            stack.stop(svc)
    return times


def _render_runs() -> list[tuple[float, int | None]] | None:
    """Wall time and Ansible's changed= total for `make render ENV=dev PROFILE=full`, twice; None if absent.

    Its output directory is removed first, so the first run writes everything and the second nothing."""
    shutil.rmtree(os.path.join(REPO, "build", "dev", "full"), ignore_errors=True)
    runs = []
    for _ in range(2):
        start = time.monotonic()
        done = subprocess.run(
            ["make", "--no-print-directory", "render", "ENV=dev", "PROFILE=full"],
            cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        took = time.monotonic() - start
        if done.returncode != 0:
            raise NotMeasured(f"make render failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        changed = [int(n) for n in re.findall(r"\bchanged=(\d+)", done.stdout)]
        runs.append((took, sum(changed) if changed else None))
    return runs


def _access_line_us() -> float:
    """What writing one access line costs in-process (µs): the app's own log_request, to /dev/null."""
    code = (
        "import logging.config, os, sys, timeit\n"
        "from atlas_common.logging import dict_config, log_request\n"
        "sys.stderr = open(os.devnull, 'w')\n"
        "logging.config.dictConfig(dict_config('INFO'))\n"
        "n = 20000\n"
        "t = timeit.timeit(lambda: log_request('GET', '/api/v1/users/1', 200, 0.52, 'a1b2c3'), number=n)\n"
        "print(t / n * 1e6, file=sys.__stdout__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return float(done.stdout.strip())


# -- the sections ---------------------------------------------------------------------------------


def servers(stack: Stack) -> tuple[Table, dict[str, dict[str, Run]]]:
    """The same app and settings under each server, one after the other."""
    table = Table(
        "Servers side by side (users service, same settings)",
        ["server", "bare Flask /livez req/s", "/livez req/s", "/livez p99 ms", "/db-status req/s",
         "POST /api/v1/users req/s", "POST p99 ms", "/livez CPU µs/req"],
        notes=[
            "bare Flask: evidence/hello.py, one /livez view and nothing around it, under the same server and"
            " settings; the ratio /livez : bare is what Atlas' middleware leaves of the framework's speed (both"
            " measured twice, interleaved, the better run of each kept)",
            "granian: atlas_common/server.py (python -m <service> serve); gunicorn: gthread, evidence/gunicorn_conf.py"
            " (the same settings, preload, JSON logs, metrics). Left out: uWSGI (in maintenance mode upstream),"
            " waitress (one process: the GIL would cap it at one core), bjoern (no release since 2022)",
        ],
    )  # fmt: skip
    figures: dict[str, dict[str, Run]] = {}
    for server in (DEFAULT_SERVER, *(s for s in SERVERS if s != DEFAULT_SERVER)):
        print(f"[bench] server {server}", flush=True)
        hello = stack.service("users", server=server, app=HELLO_APP)
        users = stack.service("users", server=server)
        _warm(users)
        # The middleware ratio compares two runs: each twice, interleaved, the better kept, so that a burst of
        # other load on the machine weighs on both alike.
        pairs = [(_measure(hello.url("/livez"), [hello]), _measure(users.url("/livez"), [users])) for _ in range(2)]
        runs = {
            "hello": max((h for h, _ in pairs), key=lambda r: r.wrk.rps),
            "livez": max((a for _, a in pairs), key=lambda r: r.wrk.rps),
            "db-status": _measure(users.url("/db-status"), [users]),
            "post": _measure(users.url("/api/v1/users"), [users], workload="post_json", body=USER_BODY),
        }
        stack.stop(hello)
        stack.stop(users)
        figures[server] = runs
        table.add(
            server, runs["hello"].wrk.rps, runs["livez"].wrk.rps, runs["livez"].wrk.p99_ms, runs["db-status"].wrk.rps,
            runs["post"].wrk.rps, runs["post"].wrk.p99_ms, runs["livez"].cpu_us_per_request,
        )  # fmt: skip
    return table, figures


def _warm(service: ServiceProcess) -> None:
    # Every worker's first requests import lazily and open the pool's connections.
    wrk.run(service.url("/db-status"), duration=1, threads=WRK_THREADS, connections=CONNECTIONS)


def access_log(stack: Stack) -> Table:
    """One JSON line per request: its price, in CPU per request with and without the line for /livez."""
    table = Table(
        "Access log: what a line costs",
        ["users /livez", "req/s", "CPU µs/req"],
        notes=[
            "ATLAS_ACCESS_LOG=no-probes leaves /livez, /readyz and /metrics out of the access log; the CPU"
            " difference per request is the line's price (JSON through logging to a pipe). Each setting measured"
            " twice, interleaved, and the lower CPU figure kept",
        ],
    )
    best: dict[str, Run] = {}
    for setting in ("all", "no-probes", "all", "no-probes"):
        users = stack.service("users", {"ATLAS_ACCESS_LOG": setting})
        _warm(users)
        run = _measure(users.url("/livez"), [users])
        stack.stop(users)
        if setting not in best or run.cpu_us_per_request < best[setting].cpu_us_per_request:
            best[setting] = run
    for setting, run in best.items():
        table.add(_label(setting), run.wrk.rps, run.cpu_us_per_request)
    with_line, without = best["all"].cpu_us_per_request, best["no-probes"].cpu_us_per_request
    table.add("one access line, in-process (µs)", None, _access_line_us())
    table.add("the line's share of a /livez request", None, f"{(with_line - without) / with_line:.1%}")
    return table


def _label(setting: str) -> str:
    return "with its access line (all)" if setting == "all" else "without (no-probes)"


def token_check(stack: Stack) -> Table:
    """What checking a bearer token costs users per request: the same reads with tokens required and not,
    the keys fetched once from a real auth service and cached."""
    table = Table(
        "Token check: GET /api/v1/users/<id> with tokens required vs not",
        ["users", "req/s", "p99 ms", "CPU µs/req"],
        notes=[
            "auth: the real service (python -m auth serve) with an ES256 key, a client made by `python -m auth"
            " create-client` and a users:read token from POST /oauth/token; users with ATLAS_AUTH_ISSUER set"
            " checks every call's token (signature, iss, aud, exp, scope) against the cached JWKS. The same"
            " Authorization header is sent to both. Each measured twice, interleaved, the lower CPU figure kept",
        ],
    )
    try:
        issuer = stack.auth("users:read")
    except RuntimeError as exc:
        raise NotMeasured(str(exc)) from None
    headers, required = issuer.headers, issuer.required
    ids = _user_ids(stack.database("users"))
    best: dict[str, Run] = {}
    for label in ("not required", "required", "not required", "required"):
        users = stack.service("users", required if label == "required" else {})
        _warm(users)
        run = _measure(users.url("/api/v1/users/"), [users], workload="get_ids", ids=ids, headers=headers)
        stack.stop(users)
        if run.wrk.errors:
            raise NotMeasured(f"users ({label}) refused {run.wrk.errors} of {run.wrk.requests} reads")
        if label not in best or run.cpu_us_per_request < best[label].cpu_us_per_request:
            best[label] = run
    stack.stop(issuer.service)
    for label, run in best.items():
        table.add(f"tokens {label}", run.wrk.rps, run.wrk.p99_ms, run.cpu_us_per_request)
    cost = best["required"].cpu_us_per_request - best["not required"].cpu_us_per_request
    table.add("the check's price per request (CPU µs)", None, None, cost)
    return table


@dataclass
class Load:
    table: Table
    runs: dict[str, Run]
    memory: dict[str, dict[str, float]]
    pg: dict[str, pgbench.PgbenchResult]


def load(stack: Stack) -> Load:
    """The default server: every endpoint under load, the owner check, and PostgreSQL's own ceiling."""
    settings = (
        f"{DEFAULT_SERVER} {WORKERS} workers x {THREADS} threads, pool = {THREADS} connections per worker,"
        f" all middleware on (metrics, JSON logs, request ids); wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{SECONDS}s"
        f" (one row at -c{WORKERS * THREADS}); pgbench -c{CONNECTIONS} -j{WRK_THREADS} -T{SECONDS};"
        " PostgreSQL 15 on 127.0.0.1 (fsync off: a test server)"
    )
    table = Table(
        f"Throughput and latency, {DEFAULT_SERVER} (one run each)",
        ["what", "req/s", "p50 ms", "p99 ms", "errors", "new DB connections", "service CPU µs/req"],
        notes=[
            settings,
            "new DB connections: sessions PostgreSQL counted during the run (pg_stat_database)",
            "service CPU µs/req: CPU time of the server processes that served the run (projects: with users,"
            " which answers its owner checks) per request; 2 cores / this bounds req/s from above (wrk needs CPU too)",
        ],
    )
    users_env, projects_env = stack.database("users"), stack.database("projects")
    users = stack.service("users")
    projects = stack.service("projects", {"USERS_SERVICE_URL": users.base_url})
    runs: dict[str, Run] = {}
    with db.SessionCounter(users_env) as users_db, db.SessionCounter(projects_env) as projects_db:
        _warm(users)
        _warm(projects)
        plan: list[tuple[str, Callable[[], Run]]] = [
            ("GET /livez", lambda: _measure(users.url("/livez"), [users], users_db)),
            ("GET /db-status", lambda: _measure(users.url("/db-status"), [users], users_db)),
            ("POST /api/v1/users", lambda: _measure(
                users.url("/api/v1/users"), [users], users_db, workload="post_json", body=USER_BODY)),
            # As many connections as the service has threads: the latency of the work itself, without the
            # queueing 32 connections on 8 threads add (Little's law: mean latency = connections / throughput).
            (f"POST /api/v1/users, {WORKERS * THREADS} connections", lambda: _measure(
                users.url("/api/v1/users"), [users], users_db, WORKERS * THREADS, workload="post_json",
                body=USER_BODY)),
        ]  # fmt: skip
        for label, measure in plan:
            print(f"[bench] {label}", flush=True)
            runs[label] = measure()
        ids = _user_ids(users_env)
        print("[bench] GET /api/v1/users/<id>", flush=True)
        runs["GET /api/v1/users/<id>"] = _measure(
            users.url("/api/v1/users/"), [users], users_db, workload="get_ids", ids=ids
        )
        print("[bench] POST /api/v1/projects", flush=True)
        runs["POST /api/v1/projects (owner check on)"] = _measure(
            projects.url("/api/v1/projects"), [projects, users], projects_db,
            workload="post_json", body=PROJECT_BODY, ids=ids,
        )  # fmt: skip
    for label, run in runs.items():
        r = run.wrk
        table.add(label, r.rps, r.p50_ms, r.p99_ms, r.errors, run.connections_opened, run.cpu_us_per_request)
    memory = {"users": _worker_memory(users), "projects": _worker_memory(projects)}
    stack.stop(projects)
    stack.stop(users)

    print("[bench] pgbench", flush=True)
    pgbench.prepare(users_env)
    pg = {}
    for label, script in [("SELECT 1", "select1"), ("single-row INSERT", "insert_row")]:
        pg[label] = pgbench.run(users_env, script, clients=CONNECTIONS, threads=WRK_THREADS, duration=SECONDS)
        r = pg[label]
        if r.transactions == 0:
            raise NotMeasured(f"pgbench {label}: no transaction")
        table.add(f"pgbench {label}", r.tps, None, None, r.failed, None, None)
        table.notes.append(f"pgbench {label}: mean latency {r.mean_ms:.3f} ms (pgbench reports no percentiles)")
    return Load(table, runs, memory, pg)


def pool_trap(stack: Stack, db_status: Run) -> Table:
    columns = ["setting", "req/s (queries/s)", "new DB connections"]
    table = Table("Connection pool: atlas_common's vs psycopg2's", columns)
    table.add(f"service /db-status, pool = threads ({THREADS})", db_status.wrk.rps, db_status.connections_opened)
    print("[bench] psycopg2 ThreadedConnectionPool trap", flush=True)
    for minconn in (1, THREADS):
        t = pooltrap.run(stack.database("users"), minconn=minconn, threads=THREADS, seconds=max(1, SECONDS // 2))
        table.add(f"psycopg2 ThreadedConnectionPool minconn={minconn} maxconn={THREADS}", t.qps, t.connections_opened)
    table.notes.append(
        "The services use atlas_common's own pool, which keeps its connections (min = max by design; a pool"
        " smaller than the threads is refused), so the trap cannot be switched on in them; the psycopg2 rows"
        f" reproduce it directly: {THREADS} threads doing getconn / SELECT 1 / putconn with"
        f" {pooltrap.THINK * 1000:g} ms of other work between queries, as a request handler has."
    )
    return table


def goals(server_runs: dict[str, dict[str, Run]], measured: Load, readyz: list[tuple[float, float]], renders) -> Table:
    """Issue 14's goals, each met or missed. Ratios come from one run on one server."""
    ours = server_runs[DEFAULT_SERVER]
    runs = measured.runs
    livez, db_status = runs["GET /livez"].wrk, runs["GET /db-status"].wrk
    post_users, post_projects = runs["POST /api/v1/users"].wrk, runs["POST /api/v1/projects (owner check on)"].wrk
    rss = measured.memory["users"]["rss"]
    worst_start = max(wall for wall, _ in readyz)
    table = Table("Goals (issue 14)", ["figure", "goal", "measured", "met"])

    def goal(figure: str, wanted: str, value: float, met: bool) -> None:
        table.add(figure, wanted, value, "pass" if met else "MISS")

    middleware = ours["livez"].wrk.rps / ours["hello"].wrk.rps
    goal(f"Atlas /livez vs bare Flask /livez ({DEFAULT_SERVER})", ">= 0.75", middleware, middleware >= 0.75)
    goal("/db-status vs /livez (req/s)", ">= 0.6", db_status.rps / livez.rps, db_status.rps >= 0.6 * livez.rps)
    goal(f"POST /api/v1/users p99 at {CONNECTIONS} connections (ms)", "< 25", post_users.p99_ms, post_users.p99_ms < 25)
    owner = post_projects.rps / post_users.rps
    goal("POST /api/v1/projects (owner check) vs POST /api/v1/users (req/s)", ">= 0.5", owner, owner >= 0.5)
    goal("worker RSS, largest, after load (MiB)", "< 75", rss, rss < 75)
    goal(f"process start -> first /readyz 200, worst of {READYZ_STARTS} (s)", "< 1", worst_start, worst_start < 1)
    if renders is not None:
        goal("make render, second run: changed", "= 0", renders[1][1], renders[1][1] == 0)
    table.notes.append(
        f"Context: the same POST /api/v1/users p99 at {WORKERS * THREADS} connections, no queueing:"
        f" {report.fmt(runs[f'POST /api/v1/users, {WORKERS * THREADS} connections'].wrk.p99_ms)} ms"
    )
    return table


def main() -> int:
    print(f"[bench] {report.machine()}", flush=True)
    if SHORT:
        print("[bench] short mode: one second a run, no make render (speed is not judged here)", flush=True)
    try:
        with Stack() as stack:
            server_table, server_runs = servers(stack)
            print("[bench] access log", flush=True)
            log_table = access_log(stack)
            measured = load(stack)
            print("[bench] token check", flush=True)
            token_table = token_check(stack)
            pool = pool_trap(stack, measured.runs["GET /db-status"])
            print("[bench] time to first /readyz 200", flush=True)
            readyz = _readyz_seconds(stack)
        renders = None
        if not SHORT:
            print("[bench] make render ENV=dev PROFILE=full, twice", flush=True)
            renders = _render_runs()
    except NotMeasured as exc:
        print(f"[bench] FAILED: a figure could not be measured: {exc}", file=sys.stderr)
        return 1

    process = Table("One process", ["what", "figure"])
    for service, memory in measured.memory.items():
        process.add(f"{service} worker RSS after load, largest (MiB)", memory["rss"])
        process.add(f"{service} worker PSS after load, largest (MiB)", memory["pss"])
    process.add(f"process start -> first 200 on /readyz, worst of {READYZ_STARTS} (s)", max(w for w, _ in readyz))
    process.add("CPU used by the server until then, worst (s)", max(c for _, c in readyz))
    process.notes.append("PSS splits the pages shared with the main process (the app is imported before the fork).")
    process.notes.append("readyz starts (wall / CPU): " + ", ".join(f"{w:.3f}s / {c:.2f}s" for w, c in readyz))

    tables = [server_table, log_table, measured.table, token_table, pool, process]
    if renders is not None:
        provisioning = Table("Provisioning: make render ENV=dev PROFILE=full", ["run", "wall s", "changed"])
        for label, (took, changed) in zip(("first (output removed before)", "again"), renders, strict=True):
            provisioning.add(label, took, changed if changed is not None else "no recap")
        tables.append(provisioning)
    tables.append(goals(server_runs, measured, readyz, renders))
    report.write("bench-short.md" if SHORT else "bench.md", "make bench", tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
