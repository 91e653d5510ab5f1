"""The chaos run: two daemons on one PostgreSQL through a compressed week of slots, with random
`kill -9`, SIGTERM, database outages and API faults, then an audit of what they recorded.

    python benchmarks/chaos.py                  # about ten minutes (`make chaos`)
    python benchmarks/chaos.py --minutes 1      # the short form CI runs (tests/reliability)

A week is compressed: `every: 2s` stands for an hourly job, `every: 5s` with 2 s of jitter for a
job every few hours, and minutely crons with jitter for the nightly ones. The sandbox runs in
this process (operations of 0.4 s to 1 s; a share of requests answered 500/502/503/504 before
or after acting, dropped before acting, or acted on and never answered) and records every
operation it accepts. The database sits behind a relay that the run cuts for up to
`--outage-max` seconds at a time.

At the end every daemon is stopped, one more starts with a long `shutdown_timeout` to recover
what the last shutdown left and to drain, and the audit checks that:
- every slot of every job from the first start to the end has exactly one row (a run, or
  `skipped` / `missed` with its reason);
- no run is left `running` and no operation unresolved;
- no request that is not safe to repeat reached the sandbox twice for one task, and no request
  reached it outside the task that sent it (a process that lost its run or lock kept going);
- no daemon exited with an unexpected code, and no log holds a traceback.
It prints the figures and exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scheduler.actions import Repeat, registry  # noqa: E402
from scheduler.sandbox import Faults, Sandbox, SandboxOptions, SandboxServer  # noqa: E402
from scheduler.sandbox.state import SandboxEnvironment, SandboxOperation  # noqa: E402
from tests.relay import Relay  # noqa: E402

KEY = "chaos-key"
# A PostgreSQL server's maintenance database: each chaos run creates (and drops) its own.
PG_ADMIN = os.environ.get(
    "KINSTA_SCHEDULER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# The sandbox's kind of operation for each action the run uses.
KINDS = {"clear_cache": "cache:clear", "restart_php": "php:restart"}
# Exit codes a daemon may end with here: 0 (SIGTERM), -9 (kill -9), 130 (a second signal),
# -15 (SIGTERM while Python itself was still starting, before any handler could exist).
EXPECTED_EXITS = {0, -9, -15, 130}
SLACK_S = 1.0  # clock tolerance when placing a request inside its task's window
GRACE_S = 10.0  # every job's misfire_grace
IN_FLIGHT_S = 5.0  # see _after
UNCERTAIN_S = 30.0  # see _after

JOBS = """version: 1
daemon: {{heartbeat: 0.5s, shutdown_timeout: {shutdown}, db_retry: 20s}}
kinsta:
  timeout: 2s
  rate_limits: {{per_minute: 900}}
  polling: {{first_poll: 0.1s, max_interval: 0.4s}}
jobs:
  - id: hourly-clear
    schedule: {{every: 2s}}
    catch_up: 1h
    misfire_grace: 10s
    targets: {{sites: [{a}, {b}]}}
    actions: [clear_cache]
  - id: php-jitter
    schedule: {{every: 5s, jitter: 2s}}
    catch_up: 1h
    misfire_grace: 10s
    targets: {{sites: [{b}, {c}]}}
    actions: [restart_php]
  - id: nightly-clear
    schedule: {{cron: "* * * * *", jitter: 15s}}
    catch_up: 1h
    misfire_grace: 10s
    targets: {{sites: [{c}, {d}]}}
    actions: [clear_cache]
  - id: nightly-php
    schedule: {{cron: "*/2 * * * *", jitter: 20s}}
    catch_up: 1h
    misfire_grace: 10s
    targets: {{sites: [{a}, {d}]}}
    actions: [restart_php]
"""
EVERY_S = {"hourly-clear": 2.0, "php-jitter": 5.0, "nightly-clear": 60.0, "nightly-php": 120.0}
JITTER_S = {"hourly-clear": 0.0, "php-jitter": 2.0, "nightly-clear": 15.0, "nightly-php": 20.0}


@dataclass
class Accepted:
    """One operation the sandbox accepted: a mutating request that reached it."""

    at: datetime
    environment_id: str
    kind: str
    operation_id: str
    # Other operations running on the environment when it was accepted (environment locks
    # should keep this 0, but for an operation whose process died while it ran).
    overlapping: int = 0


@dataclass
class Figures:
    events: Counter[str] = field(default_factory=Counter)
    exits: Counter[int] = field(default_factory=Counter)
    outage_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.problems.append(what)


class Supervised:
    """A daemon kept running like systemd's Restart=always would, its output in a file."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str], figures: Figures) -> None:
        self.name = name
        self.workdir = workdir
        self.env = env
        self.figures = figures
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    def start(self) -> None:
        self.starts += 1
        log = self.workdir / f"{self.name}-{self.starts}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "scheduler", "--log-format", "json", "run"],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reap(self) -> int | None:
        """The exit code if it ended (counted), else None."""
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        self.figures.exits[code] += 1
        self.process = None
        if code == 2 and "cannot reach the history database" in self.logs[-1].read_text():
            # Started during an outage longer than db_retry: it gives up, as documented, and
            # its supervisor starts it again.
            self.figures.events["gave up waiting for the database"] += 1
            return 0
        return code

    def signal(self, signum: int, wait_s: float = 90) -> int | None:
        if not self.alive():
            return self.reap()
        assert self.process is not None
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self.figures.problems.append(f"{self.name} did not exit {wait_s:g}s after {signum}")
            self.process.kill()
            self.process.wait()
        return self.reap()

    def wait_started(self, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "daemon.started" in self.logs[-1].read_text(errors="replace"):
                return True
            if not self.alive():
                return False
            time.sleep(0.1)
        return False


def _record_operations(sandbox: Sandbox, into: list[Accepted]) -> None:
    """Note every operation a fleet accepts, with the wall time (the sandbox is an observer)."""
    for fleet in sandbox.fleets.values():
        accept = fleet.start_operation

        def recording(
            kind: str,
            target_id: str,
            environment: SandboxEnvironment | None,
            effect: Callable[[], Any] | None = None,
            claim: str | None = None,
            _accept: Callable[..., SandboxOperation] = accept,
            _fleet: Any = fleet,
        ) -> SandboxOperation:
            operation = _accept(kind, target_id, environment, effect, claim)
            if environment is not None:
                others = _fleet.active[environment.id] - 1
                into.append(
                    Accepted(
                        datetime.now(UTC), environment.id, kind, operation.operation_id, others
                    )
                )
            return operation

        fleet.start_operation = recording  # type: ignore[method-assign]


def _create_database(name: str) -> None:
    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def _drop_database(name: str) -> None:
    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def _slots(job: str, start: datetime, end: datetime) -> list[datetime]:
    """The job's slots in [start, end]: intervals are anchored at 2000-01-01Z; crons here are
    whole minutes (`*/2`: even minutes) in UTC."""
    every = EVERY_S[job]
    anchor = datetime(2000, 1, 1, tzinfo=UTC)
    first = anchor + timedelta(seconds=every * -(-(start - anchor).total_seconds() // every))
    found = []
    at = first
    while at <= end:
        found.append(at)
        at += timedelta(seconds=every)
    return found


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def audit(
    engine: sa.Engine, accepted: list[Accepted], start: datetime, end: datetime, figures: Figures
) -> None:
    with engine.connect() as connection:
        runs = connection.execute(
            sa.text("SELECT id, job_id, trigger, scheduled_for, status, error FROM runs")
        ).all()
        tasks = connection.execute(
            sa.text(
                "SELECT id, run_id, environment_id, action, status, message, started_at, "
                "finished_at FROM tasks"
            )
        ).all()
        operations = connection.execute(
            sa.text("SELECT task_id, operation_id, state, started_at FROM operations")
        ).all()

    # Every slot, exactly one row.
    rows: dict[tuple[str, datetime], list[Any]] = defaultdict(list)
    for run in runs:
        if run.trigger != "manual":
            rows[(run.job_id, _utc(run.scheduled_for))].append(run)
    statuses: Counter[str] = Counter(run.status for run in runs)
    for job in EVERY_S:
        # A slot is due once its jitter has passed; leave one interval for the last firing.
        # A job's slots count from its first row: one that never ran has nothing to catch up
        # (README), so slots lost before its first row (kill -9 while the database was cut at
        # the very start) are not this audit's to find.
        until = end - timedelta(seconds=JITTER_S[job] + 2)
        first = min((slot for (j, slot) in rows if j == job), default=None)
        if first is None:
            # Never ran (every firing fell while no daemon could record it): nothing to catch
            # up, as for any job without a row. Chaos luck for a slot or two, a defect beyond.
            due = _slots(job, start, until)
            figures.lines.append(f"  {job}: no row at all ({len(due)} slot(s) due)")
            figures.check(len(due) < 3, f"{job}: never ran in {len(due)} slots")
            continue
        if first > start:
            figures.lines.append(f"  {job}: first row {(first - start).total_seconds():.0f}s in")
        expected = _slots(job, max(start, first), until)
        missing = [slot for slot in expected if (job, slot) not in rows]
        twice = [slot for slot in expected if len(rows.get((job, slot), [])) > 1]
        figures.lines.append(
            f"  {job}: {len(expected)} slots, {len(expected) - len(missing)} with a row, "
            f"{len(missing)} without, {len(twice)} with two or more"
        )
        figures.check(not missing, f"{job}: slots without a row: {[str(s) for s in missing[:5]]}")
        figures.check(not twice, f"{job}: slots with two rows: {[str(s) for s in twice[:5]]}")
    reasonless = [r.id for r in runs if r.status in ("skipped", "missed") and not r.error]
    figures.check(not reasonless, f"skipped/missed rows without a reason: {reasonless[:5]}")
    figures.lines.append(f"  rows by status: {dict(sorted(statuses.items()))}")
    figures.check(statuses["running"] == 0, f"{statuses['running']} run(s) left running")
    unresolved = [s.state for s in operations if s.state in ("in_progress", "pending", "running")]
    states = Counter(s.state for s in operations)
    figures.lines.append(f"  operations by state: {dict(sorted(states.items()))}")
    figures.check(not unresolved, f"{len(unresolved)} operation(s) unresolved")

    audit_requests(accepted, tasks, operations, figures)


def _uncertain(task: Any) -> bool:
    """A task that sent a change request and gave up waiting for its answer (the client's
    timeout, a connection lost after sending): recorded failed, "uncertain", never repeated."""
    return (task.message or "").startswith("uncertain:")


def _after(task: Any) -> timedelta:
    """How long after its recorded end a task's request may still reach the sandbox:
    - a request sent just before its process was killed can be read by the server after a
      recovery on the same host (at once: the pid is gone) recorded the task `interrupted`;
    - a request whose answer the client stopped waiting for (2 s here) may be handled later
      still by a server slowed by the run's load (as Kinsta may act on one late): the task
      says so ("uncertain: the request may have reached Kinsta"), and sent nothing again."""
    if _uncertain(task):
        return timedelta(seconds=UNCERTAIN_S)
    return timedelta(seconds=IN_FLIGHT_S if task.status == "interrupted" else SLACK_S)


def _nearest(request: Accepted, candidates: Sequence[Any]) -> str:
    """The task nearest to an unattributed request, for the report."""
    if not candidates:
        return "no task of that kind on that environment"
    task = min(candidates, key=lambda t: abs(_utc(t.started_at) - request.at))
    end = f"{_utc(task.finished_at):%H:%M:%S.%f}" if task.finished_at else "-"
    return (
        f"nearest task {task.id} ({task.status}, {_utc(task.started_at):%H:%M:%S.%f}..{end}: "
        f"{(task.message or '')[:120]})"
    )


def audit_requests(
    accepted: list[Accepted], tasks: Sequence[Any], operations: Sequence[Any], figures: Figures
) -> None:
    """Every accepted request inside exactly one task that could have sent it; at most one per
    task unless its action is safe to repeat."""
    safe = {name for name, action in registry().items() if action.repeat is Repeat.ALWAYS}
    by_env: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for task in tasks:
        if task.environment_id and task.started_at and task.action in KINDS:
            by_env[(task.environment_id, KINDS[task.action])].append(task)
    recorded: dict[str, list[Any]] = defaultdict(list)
    for operation in operations:
        recorded[operation.operation_id].append(operation)
    sent: Counter[int] = Counter()
    orphans: list[str] = []
    late = 0
    ambiguous = 0
    slack = timedelta(seconds=SLACK_S)
    for request in accepted:
        # The task that recorded this operation (ids may repeat: the nearest start), else the
        # task whose window holds the request (its answer was lost, so nothing was recorded).
        rows = [
            row
            for row in recorded[request.operation_id]
            if abs(_utc(row.started_at) - request.at) <= 2 * slack
        ]
        if rows:
            nearest = min(rows, key=lambda row: abs(_utc(row.started_at) - request.at))
            sent[nearest.task_id] += 1
            continue
        owners = [
            task
            for task in by_env[(request.environment_id, request.kind)]
            if _utc(task.started_at) - slack <= request.at
            and (task.finished_at is None or request.at <= _utc(task.finished_at) + _after(task))
        ]
        if len(owners) == 0:
            candidates = by_env[(request.environment_id, request.kind)]
            orphans.append(
                f"{request.kind} {request.environment_id[:8]} at {request.at:%H:%M:%S.%f} "
                f"({request.overlapping} other operation(s) running there), "
                + _nearest(request, candidates)
            )
        elif len(owners) == 1:
            sent[owners[0].id] += 1
            owner = owners[0]
            if owner.finished_at is not None and request.at > _utc(owner.finished_at) + slack:
                late += 1
        else:
            ambiguous += 1  # windows overlapping (a recovered task's and its successor's)
    action_of = {task.id: task.action for task in tasks}
    repeated = {t: n for t, n in sent.items() if n > 1}
    harmful = {t: n for t, n in repeated.items() if action_of[t] not in safe}
    figures.lines.append(
        f"  requests accepted by the sandbox: {len(accepted)}; tasks that sent one: {len(sent)}; "
        f"sent again by design (safe to repeat): {len(repeated) - len(harmful)}; "
        f"reached it after their task had ended (uncertain or interrupted, as recorded): "
        f"{late}; outside any task: {len(orphans)}; not attributable: {ambiguous}; accepted "
        f"while another ran on the same environment: {sum(r.overlapping > 0 for r in accepted)}"
    )
    figures.check(not harmful, f"requests not safe to repeat reached Kinsta twice: {harmful}")
    figures.check(not orphans, "requests outside any task's window: " + "; ".join(orphans[:5]))


class ChaosRun:
    """The parts (sandbox, relay, database, two supervised daemons) and the phases."""

    def __init__(self, seed: int, fault_rate: float, outage_max: float) -> None:
        self.rng = random.Random(seed)
        self.outage_max = outage_max
        self.figures = Figures()
        self.database = f"chaos_{os.getpid()}"
        _create_database(self.database)
        # Half errors (500/502/503/504; a third of them after the sandbox acted, so the
        # client cannot know), a quarter dropped before acting, a quarter acted on and never
        # answered.
        fault = Faults(
            error=fault_rate * 0.5,
            drop=fault_rate * 0.25,
            hang=fault_rate * 0.25,
            hang_s=3,
            statuses=(500, 502, 503, 504),
            after_acting=0.33,
        )
        self.sandbox = Sandbox(
            SandboxOptions(
                sites=4, seed=seed, time_scale=0.1, api_key=KEY, per_minute=900, faults=fault
            )
        )
        self.accepted: list[Accepted] = []
        _record_operations(self.sandbox, self.accepted)
        self.server = SandboxServer(self.sandbox).start()
        server = sa.make_url(PG_ADMIN)
        self.relay = Relay(server.host or "127.0.0.1", server.port or 5432)
        self.outage_lock = threading.Lock()
        self.workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
        self.names = dict(
            zip("abcd", (site.name for site in self.sandbox.fleet.sites), strict=True)
        )
        self.write_jobs(shutdown="2s")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KINSTA_")}
        self.env.update(
            KINSTA_API_URL=self.server.url,
            KINSTA_API_KEY=KEY,
            KINSTA_SCHEDULER_DATABASE_URL=server.set(
                host="127.0.0.1", port=self.relay.port, database=self.database
            ).render_as_string(hide_password=False),
            PYTHONUNBUFFERED="1",
        )
        self.engine = sa.create_engine(server.set(database=self.database))
        self.daemons = [Supervised(f"d{n}", self.workdir, self.env, self.figures) for n in (1, 2)]
        self.last = Supervised("final", self.workdir, self.env, self.figures)

    def write_jobs(self, shutdown: str) -> None:
        (self.workdir / "jobs.yaml").write_text(JOBS.format(shutdown=shutdown, **self.names))

    def start(self) -> datetime:
        upgrade = subprocess.run(
            [sys.executable, "-m", "scheduler", "db", "upgrade"],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            check=False,
        )
        if upgrade.returncode != 0:
            raise SystemExit(f"db upgrade failed: {upgrade.stderr.decode()}")
        for daemon in self.daemons:
            daemon.start()
        for daemon in self.daemons:
            daemon.wait_started()
        return datetime.now(UTC) + timedelta(seconds=1)

    def outage(self, seconds: float) -> None:
        with self.outage_lock:
            self.relay.cut()
            time.sleep(seconds)
            self.relay.restore()
            self.figures.outage_s += seconds

    def storm(self, minutes: float) -> None:
        """Random kill -9, SIGTERM and database outages; a supervisor restarts what ends."""
        figures, rng = self.figures, self.rng
        deadline = time.monotonic() + minutes * 60
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(2, 6))
            for daemon in self.daemons:
                code = daemon.reap()
                if code is not None:
                    figures.check(code in EXPECTED_EXITS, f"{daemon.name} exited {code} on its own")
                    daemon.start()
            event = rng.choices(["kill9", "sigterm", "outage"], weights=[3, 2, 2])[0]
            figures.events[event] += 1
            if event == "outage":
                if not self.outage_lock.locked():
                    seconds = rng.uniform(1, self.outage_max)
                    threading.Thread(target=self.outage, args=(seconds,), daemon=True).start()
                continue
            victim = rng.choice(self.daemons)
            if event == "kill9":
                code = victim.signal(signal.SIGKILL, wait_s=10)
                time.sleep(rng.uniform(0, 3))
            else:
                code = victim.signal(signal.SIGTERM)
            figures.check(
                code is None or code in EXPECTED_EXITS, f"{victim.name} exited {code} on {event}"
            )
            victim.start()

    def finish(self) -> datetime:
        """The database back, faults off, both stopped; one more daemon recovers what the last
        shutdown left, then drains (a long shutdown_timeout) and stops. Returns the end of the
        slots to account for."""
        with self.outage_lock:
            self.relay.restore()
        self.sandbox.faults.error = self.sandbox.faults.drop = self.sandbox.faults.hang = 0.0
        time.sleep(5)
        stopped = datetime.now(UTC)
        for daemon in self.daemons:
            code = daemon.signal(signal.SIGTERM)
            self.figures.check(code in EXPECTED_EXITS, f"{daemon.name} exited {code} at the end")
        self.write_jobs(shutdown="60s")
        self.last.start()
        self.last.wait_started()
        settle = time.monotonic() + 60
        query = sa.text("SELECT count(*) FROM runs WHERE status = 'running' AND scheduled_for < :t")
        while time.monotonic() < settle:
            with self.engine.connect() as connection:
                if connection.execute(query, {"t": stopped}).scalar_one() == 0:
                    break
            time.sleep(0.5)
        # A slot lost by a killed process is recorded by the gap check once its misfire grace
        # (10 s here) has passed: let the last daemon make a pass after that.
        time.sleep(GRACE_S + 5)
        end = datetime.now(UTC) - timedelta(seconds=GRACE_S)
        code = self.last.signal(signal.SIGTERM)
        self.figures.check(code == 0, f"the final daemon exited {code}")
        tracebacks = [
            log.name
            for daemon in [*self.daemons, self.last]
            for log in daemon.logs
            if "Traceback" in log.read_text(errors="replace")
        ]
        self.figures.check(not tracebacks, f"tracebacks in {tracebacks}")
        return end

    def close(self, *, keep: bool) -> None:
        self.engine.dispose()
        self.server.stop()
        self.relay.close()
        if keep:
            print(f"kept: {self.workdir} and database {self.database}")
        else:
            _drop_database(self.database)


def chaos(
    minutes: float,
    seed: int,
    fault_rate: float,
    outage_max: float,
    keep: bool,
) -> Figures:
    run = ChaosRun(seed, fault_rate, outage_max)
    try:
        start = run.start()
        run.storm(minutes)
        end = run.finish()
        figures = run.figures
        figures.lines.insert(
            0,
            f"  {minutes:g} min; events {dict(figures.events)}; database cut for "
            f"{figures.outage_s:.0f}s in all; daemon exits {dict(figures.exits)}; "
            f"sandbox faults {dict(run.sandbox.stats.faults)}",
        )
        audit(run.engine, run.accepted, start, end, figures)
        figures.lines.append(f"  logs in {run.workdir}")
        return figures
    finally:
        for daemon in [*run.daemons, run.last]:
            if daemon.alive() and daemon.process is not None:
                daemon.process.kill()
        run.close(keep=keep)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--outage-max", type=float, default=60.0, help="seconds")
    parser.add_argument("--keep", action="store_true", help="keep the database for a look")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = chaos(args.minutes, args.seed, args.fault_rate, args.outage_max, args.keep)
    if args.json:
        print(json.dumps({"problems": figures.problems, "figures": figures.lines}))
    else:
        print("chaos run:")
        print("\n".join(figures.lines))
        print("problems:" if figures.problems else "no problems found")
        for problem in figures.problems:
            print(f"  - {problem}")
    return 1 if figures.problems else 0


if __name__ == "__main__":
    sys.exit(main())
