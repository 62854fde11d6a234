"""`make bench`: how fast Atlas is on this machine, measured; prints tables and writes build/bench.md.

It asserts nothing about speed (figures vary by machine); it marks each target of issue 7 as met or
missed. All load goes to 127.0.0.1, every run is bounded: BENCH_SECONDS (default 8) per wrk/pgbench run,
about two and a half minutes in all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from evidence import db, pgbench, pooltrap, proc, report, wrk
from evidence.report import Table
from evidence.stack import THREADS, WORKERS, Stack

SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
CONNECTIONS = 32
WRK_THREADS = 2
READYZ_STARTS = 3
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

USER_BODY = json.dumps({"email": "bench-{n}@example.test", "name": "Bench {n}"})
PROJECT_BODY = '{"name": "Bench {n}", "owner_id": {id}}'  # {id}: an existing user, so the owner check passes


@dataclass(frozen=True)
class Run:
    wrk: wrk.WrkResult
    connections_opened: int
    cpu_ms_per_request: float  # of every service process that served it; unlike req/s, barely moved by load


def _measure(url: str, counter: db.SessionCounter, serving: list, connections: int = CONNECTIONS, **kwargs) -> Run:
    """One wrk run, the database connections opened during it, and the services' CPU time per request."""
    before, cpu_before = counter.read(), sum(s.cpu_seconds() for s in serving)
    result = wrk.run(url, duration=SECONDS, threads=WRK_THREADS, connections=connections, **kwargs)
    cpu = sum(s.cpu_seconds() for s in serving) - cpu_before
    return Run(result, counter.read() - before, 1000 * cpu / max(result.requests, 1))


def _user_ids(env: dict[str, str], limit: int = 2000) -> list[str]:
    with db.connection(env) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM users ORDER BY id LIMIT %s", (limit,))
        return [str(row[0]) for row in cur.fetchall()]


def _worker_memory(service) -> dict[str, float]:
    """The largest RSS and PSS among the service's workers, in MiB."""
    sizes = [proc.memory_mb(pid) for pid in service.worker_pids()]
    return {"rss": max(s["rss"] for s in sizes), "pss": max(s["pss"] for s in sizes)}


def _readyz_seconds(stack: Stack) -> list[tuple[float, float]]:
    """Fresh users processes: (wall seconds from spawning gunicorn to the first 200 on /readyz, CPU seconds
    gunicorn used until then). The CPU figure does not grow when other processes crowd the machine."""
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
        if "No rule to make target" in done.stderr:
            return None
        if done.returncode != 0:
            print(
                f"make render failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}", file=sys.stderr
            )
            return None
        changed = [int(n) for n in re.findall(r"\bchanged=(\d+)", done.stdout)]
        runs.append((took, sum(changed) if changed else None))
    return runs


def main() -> int:
    settings = (
        f"gunicorn gthread {WORKERS} workers x {THREADS} threads, pool = {THREADS} connections per worker, "
        f"all middleware on (metrics, JSON logs, request ids); wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{SECONDS}s"
        f" (one row at -c{WORKERS * THREADS}); "
        f"pgbench -c{CONNECTIONS} -j{WRK_THREADS} -T{SECONDS}; PostgreSQL 15 on 127.0.0.1 (fsync off: a test server)"
    )
    print(f"[bench] {report.machine()}\n[bench] {settings}", flush=True)
    load = Table(
        "Throughput and latency (one run each)",
        ["what", "req/s", "p50 ms", "p99 ms", "errors", "new DB connections", "service CPU ms/req"],
        notes=[
            settings,
            "new DB connections: sessions PostgreSQL counted during the run (pg_stat_database)",
            "service CPU ms/req: CPU time of the gunicorn processes that served the run (projects: with users,"
            " which answers its owner checks) per request; 2 cores / this bounds req/s from above (wrk needs CPU too)",
        ],
    )
    pool = Table(
        "Connection pool: sized to the threads vs not",
        ["setting", "req/s (queries/s)", "new DB connections"],
    )
    process = Table("One process", ["what", "figure"])
    with Stack() as stack:
        users_env, projects_env = stack.database("users"), stack.database("projects")
        users = stack.service("users")
        projects = stack.service("projects", {"USERS_SERVICE_URL": users.base_url})
        with db.SessionCounter(users_env) as users_db, db.SessionCounter(projects_env) as projects_db:
            wrk.run(users.url("/livez"), duration=2, threads=WRK_THREADS, connections=CONNECTIONS)  # warm-up
            runs = {}
            for label, url, counter, kwargs in [
                ("GET /livez", users.url("/livez"), users_db, {}),
                ("GET /db-status", users.url("/db-status"), users_db, {}),
                (
                    "POST /api/v1/users",
                    users.url("/api/v1/users"),
                    users_db,
                    {"workload": "post_json", "body": USER_BODY},
                ),
            ]:
                print(f"[bench] {label}", flush=True)
                runs[label] = _measure(url, counter, [users], **kwargs)
            # As many connections as the service has threads: the latency of the work itself, without the
            # queueing 32 connections on 8 threads add (Little's law: mean latency = connections / throughput).
            print(f"[bench] POST /api/v1/users at {WORKERS * THREADS} connections", flush=True)
            runs[f"POST /api/v1/users, {WORKERS * THREADS} connections"] = _measure(
                users.url("/api/v1/users"), users_db, [users], WORKERS * THREADS, workload="post_json", body=USER_BODY
            )
            ids = _user_ids(users_env)
            print("[bench] GET /api/v1/users/<id>", flush=True)
            runs["GET /api/v1/users/<id>"] = _measure(
                users.url("/api/v1/users/"), users_db, [users], workload="get_ids", ids=ids
            )
            print("[bench] POST /api/v1/projects", flush=True)
            runs["POST /api/v1/projects (owner check on)"] = _measure(
                projects.url("/api/v1/projects"), projects_db, [projects, users],
                workload="post_json", body=PROJECT_BODY, ids=ids,
            )  # fmt: skip
            for label, run in runs.items():
                r = run.wrk
                load.add(label, r.rps, r.p50_ms, r.p99_ms, r.errors, run.connections_opened, run.cpu_ms_per_request)
            memory = {"users": _worker_memory(users), "projects": _worker_memory(projects)}

            print("[bench] pgbench", flush=True)
            pgbench.prepare(users_env)
            pg = {}
            for label, script in [("SELECT 1", "select1"), ("single-row INSERT", "insert_row")]:
                pg[label] = pgbench.run(users_env, script, clients=CONNECTIONS, threads=WRK_THREADS, duration=SECONDS)
                r = pg[label]
                load.add(f"pgbench {label}", r.tps, None, None, r.failed, None, None)
                load.notes.append(f"pgbench {label}: mean latency {r.mean_ms:.3f} ms (pgbench reports no percentiles)")

            print("[bench] GET /db-status with an undersized pool (ATLAS_DB_POOL_SIZE=1)", flush=True)
            small = stack.service("users", {"ATLAS_DB_POOL_SIZE": "1"})
            small_run = _measure(small.url("/db-status"), users_db, [small])
            stack.stop(small)
        db_status = runs["GET /db-status"].wrk
        pool.add(
            f"service /db-status, pool = threads ({THREADS})", db_status.rps, runs["GET /db-status"].connections_opened
        )
        pool.add("service /db-status, pool = 1 (threads queue for it)", small_run.wrk.rps, small_run.connections_opened)
        print("[bench] psycopg2 ThreadedConnectionPool trap", flush=True)
        for minconn in (1, THREADS):
            t = pooltrap.run(users_env, minconn=minconn, threads=THREADS, seconds=max(3, SECONDS // 2))
            pool.add(
                f"psycopg2 ThreadedConnectionPool minconn={minconn} maxconn={THREADS}", t.qps, t.connections_opened
            )
        pool.notes += [
            "The services use atlas_common's own pool, which keeps its connections (min = max by design), so the"
            " trap cannot be switched on in them; the psycopg2 rows reproduce it directly: 4 threads doing"
            f" getconn / SELECT 1 / putconn with {pooltrap.THINK * 1000:g} ms of other work between queries, as a"
            " request handler has.",
        ]

        print("[bench] time to first /readyz 200", flush=True)
        readyz = _readyz_seconds(stack)
        process.add("users worker RSS after load, largest (MiB)", memory["users"]["rss"])
        process.add("users worker PSS after load, largest (MiB)", memory["users"]["pss"])
        process.add("projects worker RSS after load, largest (MiB)", memory["projects"]["rss"])
        worst = max(wall for wall, _ in readyz)
        process.add(f"process start -> first 200 on /readyz, worst of {READYZ_STARTS} (s)", worst)
        process.add("CPU used by gunicorn until then, worst (s)", max(cpu for _, cpu in readyz))
        process.notes.append("PSS splits pages shared with the gunicorn master (preload_app) among the sharers.")
        process.notes.append("readyz starts (wall / CPU): " + ", ".join(f"{w:.3f}s / {c:.2f}s" for w, c in readyz))

    print("[bench] make render ENV=dev PROFILE=full, twice", flush=True)
    renders = _render_runs()
    provisioning = Table("Provisioning: make render ENV=dev PROFILE=full", ["run", "wall s", "changed"])
    if renders is None:
        provisioning.add("make render", "not available", "not available")
    else:
        for label, (took, changed) in zip(
            ("first (output directory removed before)", "again, nothing changed"), renders, strict=True
        ):
            provisioning.add(label, took, changed if changed is not None else "no recap")

    livez = runs["GET /livez"].wrk
    post_users = runs["POST /api/v1/users"].wrk
    ratios = Table("Ratios (same run)", ["ratio", "value"])
    ratios.add("/db-status / /livez (req/s)", db_status.rps / livez.rps)
    ratios.add(
        "/db-status / /livez (capacity: inverse CPU per request)",
        runs["GET /livez"].cpu_ms_per_request / runs["GET /db-status"].cpu_ms_per_request,
    )
    ratios.add("/db-status / pgbench SELECT 1", db_status.rps / pg["SELECT 1"].tps)
    ratios.add("POST /api/v1/users / pgbench INSERT", post_users.rps / pg["single-row INSERT"].tps)
    ratios.add("GET /api/v1/users/<id> / pgbench SELECT 1", runs["GET /api/v1/users/<id>"].wrk.rps / pg["SELECT 1"].tps)

    targets = Table("Targets (issue 7)", ["target", "measured", "met"])
    targets.add(
        ">= 0.60: /db-status vs /livez throughput",
        round(db_status.rps / livez.rps, 2),
        db_status.rps >= 0.6 * livez.rps,
    )
    targets.add("< 25 ms: POST /api/v1/users p99 at 32 connections", post_users.p99_ms, post_users.p99_ms < 25)
    unqueued = runs[f"POST /api/v1/users, {WORKERS * THREADS} connections"].wrk
    targets.add(f"(context) the same p99 at {WORKERS * THREADS} connections, no queueing", unqueued.p99_ms, None)
    targets.add("< 75 MiB: one worker resident", memory["users"]["rss"], memory["users"]["rss"] < 75)
    targets.add("< 1 s: process start to first /readyz 200", worst, worst < 1)
    if renders is not None:
        targets.add("changed=0: second render", renders[1][1], renders[1][1] == 0)
    report.write("bench.md", "make bench", [load, ratios, pool, process, provisioning, targets])
    return 0


if __name__ == "__main__":
    sys.exit(main())
