"""`make faults`: the outage drills of issue 7, under steady write load, on loopback.

1. PostgreSQL stopped for OUTAGE seconds, then started again.
2. The users service stopped (SIGTERM), later frozen (SIGSTOP), while projects is creating projects.
3. A server worker killed with SIGKILL.

Each drill prints a table; the process exits 1 when a figure that must be 0 is not (or a drill could
not recover at all), so `make faults` fails loudly. Every wait and every load loop is bounded.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

import requests

from evidence import db, report
from evidence.load import Outcome, Poller, WriteLoad, by_status
from evidence.report import Table
from evidence.stack import WORKERS, Stack
from tests.support.postgres import wait_until

OUTAGE = float(os.environ.get("FAULTS_OUTAGE_SECONDS", "10"))
STEADY = 3.0  # seconds of load before and after each fault
LOAD_THREADS = 4
PAUSE = 0.005  # between one thread's requests: steady load, not a flood that hides the fault in queueing
READYZ_TARGET = 5.0


class Verdicts:
    """Collects the drills' "must be" checks; any failure makes the exit status 1."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def must(self, table: Table, figure: str, value: object, ok: bool, rule: str) -> None:
        table.add(figure, value, rule, "ok" if ok else "FAILED")
        if not ok:
            self.failed.append(f"{table.title}: {figure} = {report.fmt(value)} ({rule})")

    def target(self, table: Table, figure: str, value: float | None, limit: float) -> None:
        """A speed target: missing it is reported, not failed; never getting there at all fails."""
        if value is None:
            self.must(table, figure, "never", False, f"< {limit:g}")
        else:
            table.add(figure, value, f"< {limit:g} (target)", "met" if value < limit else "MISSED")

    def zero(self, table: Table, figure: str, value: int, of: str = "") -> None:
        self.must(table, figure, value, value == 0, f"0{of}")

    def info(self, table: Table, figure: str, value: object, rule: str = "") -> None:
        table.add(figure, value, rule, "")


def _table(title: str) -> Table:
    return Table(title, ["figure", "value", "must be / target", "verdict"])


def lost_writes(env: dict[str, str], table: str, column: str, acked: list[Outcome]) -> int:
    """Acknowledged creations that cannot be read back as acknowledged (missing, or another value)."""
    if not acked:
        return 0
    with db.connection(env) as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT id::text, {column} FROM {table} WHERE id = ANY(%s::bigint[])",  # noqa: S608 - our own constants
            ([int(o.ident) for o in acked],),
        )
        stored = dict(cur.fetchall())
    return sum(1 for o in acked if stored.get(o.ident) != o.body[column])


def _user_body(n: int) -> dict:
    return {"email": f"drill-{os.getpid()}-{n}@example.test", "name": f"Drill {n}"}


def _within(predicate: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until ``predicate`` held, or None if it did not within ``timeout`` (the table says "never")."""
    try:
        return wait_until(predicate, timeout=timeout, interval=0.02)
    except TimeoutError:
        return None


def _restarts(before: list[int], after: list[int]) -> int:
    return len(set(after) - set(before))


def database_outage(stack: Stack, v: Verdicts) -> Table:
    t = _table(f"Drill 1: PostgreSQL stopped for {OUTAGE:g} s under write load (users service)")
    users = stack.service("users")
    workers_before = users.worker_pids()
    budget = 2 * STEADY + OUTAGE + 30
    with (
        Poller(users.url("/livez"), max_seconds=budget) as livez,
        Poller(users.url("/readyz"), interval=0.05, max_seconds=budget) as readyz,
        WriteLoad(
            users.url("/api/v1/users"), _user_body, threads=LOAD_THREADS, pause=PAUSE, max_seconds=budget
        ) as load,
    ):
        time.sleep(STEADY)
        stopping = time.monotonic()
        stack.pg.stop("fast")  # returns once the server is down: "fast" cut every session
        down = time.monotonic()
        time.sleep(OUTAGE)
        heal = time.monotonic()
        stack.pg.start()
        back = time.monotonic()
        _within(lambda: readyz.first_ok_after(back) is not None, timeout=30)
        time.sleep(STEADY)
    during, after = load.within(down, heal), load.between(back, float("inf"))
    recovery = readyz.first_ok_after(back)
    v.info(t, "POST sent before the stop", by_status(load.between(0, stopping)))
    v.info(
        t, f"POST sent while PostgreSQL shut down ({down - stopping:.2f} s)", by_status(load.between(stopping, down))
    )
    v.info(t, "POST sent and answered during the outage", by_status(during))
    v.info(t, "POST sent after the database is back", by_status(after))
    v.zero(t, "outage responses that are not JSON", sum(1 for o in during if o.status is not None and not o.json))
    v.zero(t, "worker restarts", _restarts(workers_before, users.worker_pids()))
    v.zero(t, "server (main process) exits", int(users.proc.poll() is not None))
    v.zero(t, "/livez failures", livez.failures(), f" (of {len(livez.samples)} probes)")
    v.target(t, "database back -> /readyz 200 (s)", recovery, READYZ_TARGET)
    acked = load.acknowledged()
    lost = lost_writes(stack.database("users"), "users", "email", acked)
    v.zero(t, "acknowledged writes that cannot be read back", lost, f" (of {len(acked)} acknowledged)")
    stack.stop(users)
    return t


def users_outage(stack: Stack, v: Verdicts) -> Table:
    t = _table(f"Drill 2: users service stopped, then frozen, {OUTAGE:g} s each, under projects write load")
    users = stack.service("users")
    timeout, retries = 2.0, 2  # docs/interfaces.md defaults, set explicitly so the budget below matches
    projects = stack.service(
        "projects",
        {
            "USERS_SERVICE_URL": users.base_url,
            "USERS_SERVICE_TIMEOUT": str(timeout),
            "USERS_SERVICE_RETRIES": str(retries),
        },
    )
    # The longest a request may take: every try times out, plus urllib3's backoff (0.4 s, 0.8 s) between.
    budget = timeout * (retries + 1) + 0.4 + 0.8 + 1.0
    owners = [
        requests.post(users.url("/api/v1/users"), json=_user_body(-i), timeout=10).json()["id"] for i in range(1, 21)
    ]

    def body(n: int) -> dict:
        return {"name": f"drill {os.getpid()}-{n}", "owner_id": owners[n % len(owners)]}

    max_seconds = 4 * STEADY + 2 * OUTAGE + 120
    with WriteLoad(
        projects.url("/api/v1/projects"), body, threads=LOAD_THREADS, pause=PAUSE, timeout=30, max_seconds=max_seconds
    ) as load:
        time.sleep(STEADY)
        phases = []
        for label, fault, heal in [
            ("stopped (SIGTERM: connections refused)", users.stop, lambda: users.start(wait_path="/readyz")),
            ("frozen (SIGSTOP: connections hang)", users.pause, users.resume),
        ]:
            fault()
            down = time.monotonic()
            time.sleep(OUTAGE)
            heal_at = time.monotonic()
            heal()
            back = time.monotonic()
            _within(lambda b=back: any(o.status == 201 for o in load.between(b, float("inf"))), timeout=30)
            phases.append((label, down, heal_at, back))
            time.sleep(STEADY)
    allowed = {"stopped (SIGTERM: connections refused)": {503}, "frozen (SIGSTOP: connections hang)": {503, 504}}
    for label, down, heal_at, back in phases:
        during = load.within(down, heal_at)
        v.info(t, f"{label}: POST /api/v1/projects answered during the outage", by_status(during))
        wrong = [o for o in during if o.status not in allowed[label] or not o.json]
        codes = "/".join(str(c) for c in sorted(allowed[label]))
        v.zero(t, f"{label}: responses other than {codes} JSON", len(wrong), f" (of {len(during)})")
        # Every request sent during the outage, also those answered after it: none may hang past the budget.
        slowest = max((o.elapsed for o in load.between(down, heal_at)), default=0.0)
        v.must(t, f"{label}: slowest response (s)", slowest, slowest <= budget, f"<= {budget:g} (timeout budget)")
        first_ok = next(
            (o.started + o.elapsed - back for o in load.between(back, float("inf")) if o.status == 201), None
        )
        v.target(t, f"{label}: users back -> first project created (s)", first_ok, READYZ_TARGET)
    acked = load.acknowledged()
    lost = lost_writes(stack.database("projects"), "projects", "name", acked)
    v.zero(t, "acknowledged writes that cannot be read back", lost, f" (of {len(acked)} acknowledged)")
    stack.stop(projects)
    stack.stop(users)
    return t


def worker_kill(stack: Stack, v: Verdicts) -> Table:
    t = _table("Drill 3: one worker killed (SIGKILL) under write load (users service)")
    users = stack.service("users")
    before = users.worker_pids()
    with WriteLoad(
        users.url("/api/v1/users"), _user_body, threads=LOAD_THREADS, pause=PAUSE, max_seconds=4 * STEADY + 60
    ) as load:
        time.sleep(STEADY)
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()

        def replaced() -> bool:
            now = users.worker_pids()
            return victim not in now and len(now) == WORKERS

        took = _within(replaced, timeout=30)
        time.sleep(STEADY)
    after = users.worker_pids()
    v.info(
        t, "POST responses from the kill until the replacement", by_status(load.between(killed, killed + (took or 0)))
    )
    v.info(t, "POST responses in all", by_status(load.outcomes))
    v.must(t, "worker replaced by the server (s)", took if took is not None else "never", took is not None, "yes")
    v.zero(t, "server (main process) exits", int(users.proc.poll() is not None))
    v.info(t, "workers before -> after", f"{before} -> {after}")
    acked = load.acknowledged()
    lost = lost_writes(stack.database("users"), "users", "email", acked)
    v.zero(t, "acknowledged writes that cannot be read back", lost, f" (of {len(acked)} acknowledged)")
    stack.stop(users)
    return t


DRILLS: list[Callable[[Stack, Verdicts], Table]] = [database_outage, users_outage, worker_kill]


def main() -> int:
    v = Verdicts()
    tables = []
    for drill in DRILLS:
        print(f"[faults] {drill.__name__}", flush=True)
        with Stack() as stack:  # a fresh stack per drill: one drill's debris never explains another's figures
            tables.append(drill(stack, v))
    report.write("faults.md", "make faults", tables)
    for failure in v.failed:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if v.failed else 0


if __name__ == "__main__":
    sys.exit(main())
