"""Fleet benchmark: realistic nights against the sandbox, at Kinsta's limits, scaled in time.

Work: a `night` job (backup, update_plugins, clear_cache on every environment) and a
`daily-cache` job (clear_cache on every environment), started together by two `trigger`
processes that share the API key, as two jobs due at the same minute would. Neither job sets
`concurrency`: the default applies, as it would for a user who never thought about it. Each
size (--sizes, 300 and 3,000 environments) runs a cold night and a warm one (the history of the
cold night carried over, as from one night to the next). Kinsta's window and every operation's
duration are multiplied by the same --scale, so a night takes minutes; the default scale is
0.1 at 300 environments and 0.05 at 3,000 (a 3 s window: 40 requests a second at the limit;
with the sandbox in this process and `--concurrency 64` the cold night used 31% of two cores
and took 1.06 x its bound, 2026-12-03; the night's CPU share is printed to check it).

Figures, per night (also in --json):
  makespan (the night as history records it: from the first run's start to the last run's end;
    the trigger processes' wall time, with an interpreter start and exit that a daemon does
    not pay each night, is printed beside it) against the bound max(rate floor, longest
    pipeline): the rate floor is the fewest
    requests this work needs (everything sent but the polls, plus one poll per operation)
    divided by the allowed rate; the longest pipeline is, per environment, the sum of the
    durations of the operations the sandbox ran on it (the night's backup, update and clear,
    and the daily-cache clear that an environment lock serialises with them), the largest.
    Target: makespan <= 1.10 x bound, cold and warm
  requests per operation (target <= 2.3 cold, <= 2.15 warm), 429s (target 0), the most
    requests in any window against the limit (target: never over), budget utilisation while
    work was queued
  per trigger process: exit, run time, peak threads (/proc Threads, sampled every 0.2 s),
    peak resident memory (VmHWM sampled, and wait4's ru_maxrss; target <= 250 MB at 3,000
    environments) and CPU seconds (wait4); the sandbox's CPU seconds, and the night's share of
    the machine's cores (near 100% means the figures measure the CPU, not the scheduler)
  requests that are neither an action nor a poll (site and environment listings, plugin and
    theme lists, backup lists...), by the sandbox's operation name, per environment
  `plan --format json`'s predicted requests and run length of each job, asked just before the
    night, next to each trigger's run time and the night's requests and makespan (with no
    history plan knows only Kinsta's typical durations, unscaled, so run times are also shown
    divided by the scale; warm, it uses the durations learned the night before, scaled)
Once, not per size: the same work done serially (one operation at a time, polled every 3 s
scaled, as simple clients do), measured on a sample of environments of the first size's warm
night and extrapolated linearly (a serial run is linear in the environments) at Kinsta's pace;
the daemon's idle resident memory and CPU; the time it takes to reload a jobs.yaml of 1,000 jobs.

A night still running after --timeout seconds (default: twice a rough rate floor of ten
requests per environment, plus two minutes) has its triggers killed and is reported as not
finished, with the figures of what it did (its bound too: that of the work done). About 30
minutes in all once the default concurrency keeps the rate limit busy; --concurrency N sets it
in both jobs instead (to compare). --rollout gives the `night` job waves (a pause in it is
real time: scale it too), to measure what they cost against the same bound.

    python benchmarks/fleet.py [--sizes 300,3000] [--scale 0.1,0.05] [--timeout S]
                               [--concurrency N] [--rollout YAML] [--serial-sample 6]
                               [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fleet_probe import (  # noqa: E402
    PlanFigures,
    ProcessFigures,
    plan_prediction,
    run_triggers,
)
from scheduler import config as config_module  # noqa: E402
from scheduler import logs  # noqa: E402
from scheduler.clock import SystemClock  # noqa: E402
from scheduler.daemon import Collaborators, Daemon  # noqa: E402
from scheduler.domain import Polling, RateLimits, Run, Secret  # noqa: E402
from scheduler.history import make_engine, sql_store  # noqa: E402
from scheduler.history.migrate import upgrade  # noqa: E402
from scheduler.kinsta import KinstaClient, RateGovernor  # noqa: E402
from scheduler.kinsta.operations import wait_for_operation  # noqa: E402
from scheduler.ports import RunFilter  # noqa: E402
from scheduler.sandbox import Sandbox, SandboxOptions, SandboxServer  # noqa: E402
from scheduler.sandbox.server import max_in_window  # noqa: E402
from scheduler.sandbox.state import Fleet  # noqa: E402

PER_MINUTE = 120
EXE = str(Path(sys.executable).with_name("kinsta-scheduler"))
JOBS = ("night", "daily-cache")
POLL = "getOperationStatus"
DEFAULT_SIZES = (300, 3000)
DEFAULT_SCALES = {300: 0.1, 3000: 0.05}
SEED = 23
# Targets (the module docstring).
MAKESPAN_OVER_BOUND = 1.10
REQUESTS_PER_OPERATION = {"cold": 2.3, "warm": 2.15}
RSS_MB_AT_3000 = 250.0


@dataclass
class Night:
    night: str
    environments: int
    scale: float
    finished: bool  # False: killed at the timeout, the figures are of what it did
    timeout_s: float
    operations: int
    requests: int
    actions: int
    polls: int
    other_requests: int
    rate_limited: int
    max_in_window: int
    limit: int
    utilisation_queued: float
    requests_per_operation: float
    makespan_s: float  # the runs' span in history
    process_wall_s: float  # the trigger processes', from spawn to the last exit
    rate_floor_s: float
    longest_pipeline_s: float
    bound_s: float
    makespan_over_bound: float
    sandbox_cpu_s: float
    cpu_share: float  # of all the machine's cores, over the processes' wall time
    failed_triggers: int
    processes: list[ProcessFigures]
    other_by_operation: dict[str, int]
    other_per_environment: dict[str, float]
    plan: list[PlanFigures]
    per_window: list[int] = field(default_factory=list)  # requests in each window, in order
    missed: list[str] = field(default_factory=list)  # the targets it missed


@dataclass
class Once:
    serial_kinsta_s_per_environment: float  # at Kinsta's pace (measured time / scale)
    serial_sample: int
    serial_scale: float
    idle_rss_mib: float
    idle_cpu_percent: float
    reload_1000_jobs_s: float
    reload_1000_jobs_one_changed_s: float


def jobs_yaml(scale: float, concurrency: int | None, rollout: str | None = None) -> str:
    both = f"    concurrency: {concurrency}\n" if concurrency else ""
    waves = f"    rollout: {rollout}\n" if rollout else ""
    return f"""version: 1
kinsta:
  rate_limits: {{per_minute: {PER_MINUTE}, window: {60 * scale}s}}
  polling: {{first_poll: {3 * scale}s, max_interval: {30 * scale}s, not_found_grace: {30 * scale}s, deadline: {1800 * scale}s}}
jobs:
  - id: night
    schedule: {{cron: "0 3 * * *"}}  # both due at 03:00 (plan then knows they share the budget)
    targets: {{environment: all}}
{both}{waves}    actions: [backup, update_plugins, clear_cache]
  - id: daily-cache
    schedule: {{cron: "0 3 * * *"}}
    targets: {{environment: all}}
{both}    actions: [clear_cache]
"""


def cli_env(sandbox: SandboxServer, workdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "KINSTA_API_URL": sandbox.url,
        "KINSTA_API_KEY": sandbox.sandbox.options.api_key,
        "KINSTA_SCHEDULER_DATABASE_URL": f"sqlite:///{workdir / 'history.db'}",
    }


def longest_pipeline(fleet: Fleet) -> float:
    """Per environment, the sum of the durations of every operation the sandbox ran on it;
    the largest (an environment lock serialises them, whichever job sent them)."""
    with fleet.lock:
        operations = list(fleet.operations.values())
    per_environment: defaultdict[str, float] = defaultdict(float)
    for operation in operations:
        if operation.environment_id is not None:
            per_environment[operation.environment_id] += operation.duration_s
    return max(per_environment.values(), default=0.0)


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Ran:
    """What happened during a night, as the benchmark saw it."""

    makespan: float  # the runs' span in history
    process_wall_s: float
    finished: bool
    processes: list[ProcessFigures]
    plan: list[PlanFigures]
    sandbox_cpu_s: float
    timeout_s: float
    by_operation: Counter[str]
    arrivals: list[float]
    rate_limited: int


def night_runs(workdir: Path, after: int) -> list[Run]:
    """The runs in the night's history with an id above `after`."""
    engine = make_engine(f"sqlite:///{workdir / 'history.db'}")
    try:
        runs = sql_store(engine).queries.list_runs(RunFilter(limit=100_000))
    finally:
        engine.dispose()
    return [r for r in runs if r.run_id > after]


def run_night(sandbox: SandboxServer, workdir: Path, scale: float, timeout_s: float) -> Ran:
    """Ask `plan`, let the shared ledger forget it, then start both triggers and wait."""
    env = cli_env(sandbox, workdir)
    config = workdir / "jobs.yaml"
    subprocess.run(
        [EXE, "--config", str(config), "db", "upgrade"], env=env, check=True, capture_output=True
    )
    plan = plan_prediction(EXE, config, JOBS, env)
    time.sleep(60 * scale * 1.05)  # the ledger and the sandbox forget plan's requests
    stats = sandbox.sandbox.stats
    first, by_operation, limited = (
        len(stats.arrivals),
        Counter(stats.by_operation),
        stats.rate_limited,
    )
    cpu = cpu_self()
    before = night_runs(workdir, 0)
    processes, wall, finished = run_triggers(EXE, config, JOBS, env, timeout_s)
    runs = night_runs(workdir, max((r.run_id for r in before), default=0))
    ended = [r.finished_at for r in runs if r.finished_at is not None]
    makespan = (
        (max(ended) - min(r.started_at for r in runs if r.started_at)).total_seconds()
        if finished and runs and len(ended) == len(runs)
        else wall
    )
    crashed = [p for p in processes if p.exit_code not in (0, 1, None)]
    if crashed:
        tails = "".join((workdir / f"{p.job}.log").read_text()[-3000:] for p in crashed)
        raise SystemExit(f"trigger exited {[p.exit_code for p in crashed]}\n{tails}")
    return Ran(
        makespan=makespan,
        process_wall_s=wall,
        finished=finished,
        processes=sorted(processes, key=lambda p: JOBS.index(p.job)),
        plan=plan,
        sandbox_cpu_s=cpu_self() - cpu,
        timeout_s=timeout_s,
        by_operation=Counter(stats.by_operation) - by_operation,
        arrivals=list(stats.arrivals[first:]),
        rate_limited=stats.rate_limited - limited,
    )


def measure(name: str, sandbox: SandboxServer, ran: Ran, scale: float) -> Night:
    fleet = sandbox.sandbox.fleet
    environments = sum(len(s.environments) for s in fleet.sites)
    mutating = {route.name for route in sandbox.sandbox.spec.routes if route.method != "GET"}
    operations = sum(
        n for env in fleet.counters().values() for k, n in env.items() if k.endswith(":accepted")
    )
    arrivals, requests, window = ran.arrivals, len(ran.arrivals), 60 * scale
    polls = ran.by_operation[POLL]
    actions = sum(n for name_, n in ran.by_operation.items() if name_ in mutating)
    other = {k: n for k, n in sorted(ran.by_operation.items()) if k != POLL and k not in mutating}
    # The fewest requests this work needs: everything sent but the polls, plus one poll per
    # operation (an oracle that knew when each operation ends).
    floor_requests = requests - polls + operations
    rate_floor = max(0.0, floor_requests - PER_MINUTE) / PER_MINUTE * window
    pipeline = longest_pipeline(fleet)
    bound = max(rate_floor, pipeline)
    cpu = ran.sandbox_cpu_s + sum(p.cpu_s for p in ran.processes)
    night = Night(
        night=name,
        environments=environments,
        scale=scale,
        finished=ran.finished,
        timeout_s=round(ran.timeout_s),
        operations=operations,
        requests=requests,
        actions=actions,
        polls=polls,
        other_requests=sum(other.values()),
        rate_limited=ran.rate_limited,
        max_in_window=max_in_window(arrivals, window),
        limit=PER_MINUTE,
        utilisation_queued=round(utilisation(arrivals, window), 4),
        requests_per_operation=round(requests / max(1, operations), 3),
        makespan_s=round(ran.makespan, 1),
        process_wall_s=round(ran.process_wall_s, 1),
        rate_floor_s=round(rate_floor, 1),
        longest_pipeline_s=round(pipeline, 1),
        bound_s=round(bound, 1),
        makespan_over_bound=round(ran.makespan / bound, 3) if bound else 0.0,
        sandbox_cpu_s=round(ran.sandbox_cpu_s, 1),
        cpu_share=round(cpu / (ran.process_wall_s * (os.cpu_count() or 1)), 3),
        failed_triggers=sum(1 for p in ran.processes if p.exit_code == 1),
        processes=ran.processes,
        other_by_operation=other,
        other_per_environment={k: round(n / environments, 3) for k, n in other.items()},
        plan=ran.plan,
        per_window=windows(arrivals, window),
    )
    night.missed = missed_targets(night)
    return night


def windows(arrivals: list[float], window: float) -> list[int]:
    """Requests in each window from the first request on: where the budget went unused."""
    if not arrivals:
        return []
    counts = [0] * (int((arrivals[-1] - arrivals[0]) / window) + 1)
    for at in arrivals:
        counts[int((at - arrivals[0]) / window)] += 1
    return counts


def utilisation(arrivals: list[float], window: float) -> float:
    """Requests sent against those allowed while work was queued: from the first request to the
    moment only one window's worth remained. A sliding window allows L requests at once, then
    L more per window: L x (span / W + 1) in a span."""
    if len(arrivals) <= PER_MINUTE:
        return 0.0
    queued_until = arrivals[len(arrivals) - PER_MINUTE - 1]
    allowed = PER_MINUTE * ((queued_until - arrivals[0]) / window + 1)
    return (len(arrivals) - PER_MINUTE) / allowed


def missed_targets(night: Night) -> list[str]:
    """The targets the night missed; of an unfinished night, only the limits no moment may pass
    (its makespan and requests per operation are of part of the work)."""
    missed = []
    most = REQUESTS_PER_OPERATION.get(night.night)
    if not night.finished:
        missed.append(f"did not finish within {night.timeout_s:.0f} s")
    elif night.makespan_over_bound > MAKESPAN_OVER_BOUND:
        missed.append(f"makespan {night.makespan_over_bound:.2f} x bound > {MAKESPAN_OVER_BOUND}")
    if night.finished and most is not None and night.requests_per_operation > most:
        missed.append(f"{night.requests_per_operation:.2f} requests per operation > {most}")
    if night.rate_limited:
        missed.append(f"{night.rate_limited} x 429")
    if night.max_in_window > night.limit:
        missed.append(f"{night.max_in_window} requests in one window > {night.limit}")
    fattest = max((p.peak_rss_mb for p in night.processes), default=0.0)
    if night.environments >= 3000 and fattest > RSS_MB_AT_3000:
        missed.append(f"{fattest:.0f} MB resident > {RSS_MB_AT_3000:.0f}")
    return missed


def serial(sandbox: SandboxServer, scale: float, sample: int) -> float:
    """The same work, one operation at a time with fixed 3 s polls (scaled), on `sample`
    environments: seconds per environment."""
    clock = SystemClock()
    limits = RateLimits(per_minute=PER_MINUTE, window_s=60 * scale)
    client = KinstaClient(
        sandbox.url, Secret(sandbox.sandbox.options.api_key), RateGovernor(limits, clock), clock
    )
    fixed = Polling(
        first_poll_s=3 * scale, max_interval_s=3 * scale, not_found_grace_s=30, deadline_s=600
    )
    company = sandbox.sandbox.fleet.company_id
    try:
        sites = client.sites.list(company, include_environments=True)
        envs = [env.id for site in sites for env in site.environments][:sample]
        started = time.monotonic()
        for env_id in envs:
            for step in ("backup", "update", "clear", "clear"):
                if step == "backup":
                    accepted = client.backups.create(env_id, "serial")
                elif step == "update":
                    names = [p.name for p in client.plugins.list(env_id) if p.has_update]
                    if not names:
                        continue
                    accepted = client.plugins.bulk_update(env_id, names)
                else:
                    accepted = client.tools.clear_cache(env_id)
                wait_for_operation(client, accepted.operation_id, fixed, clock, expected_s=0.0)
        return (time.monotonic() - started) / max(1, len(envs))
    finally:
        client.close()


def idle_daemon(workdir: Path, seconds: float) -> tuple[float, float]:
    """RSS (MiB) and CPU (% of one core) of `run --sandbox` with nothing due."""
    config = workdir / "idle.yaml"
    config.write_text(
        "version: 1\nsandbox: {sites: 50}\njobs:\n"
        + "".join(
            f"  - {{id: job-{i}, schedule: {{cron: '0 3 1 1 *'}}, actions: [clear_cache]}}\n"
            for i in range(20)
        )
    )
    env = {**os.environ, "KINSTA_SCHEDULER_DATABASE_URL": f"sqlite:///{workdir / 'idle.db'}"}
    subprocess.run(
        [EXE, "--config", str(config), "db", "upgrade"], env=env, check=True, capture_output=True
    )
    process = subprocess.Popen(
        [EXE, "--config", str(config), "--log-level", "warning", "run", "--sandbox"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(5)  # start-up, recovery and catch-up done
        ticks = os.sysconf("SC_CLK_TCK")

        def cpu() -> float:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks

        before, at = cpu(), time.monotonic()
        time.sleep(seconds)
        used, elapsed = cpu() - before, time.monotonic() - at
        rss_kib = next(
            int(line.split()[1])
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        return rss_kib / 1024, 100 * used / elapsed
    finally:
        process.terminate()
        process.wait(timeout=40)


def reload_time(workdir: Path, jobs: int) -> tuple[float, float]:
    """Seconds for the daemon to reload a jobs.yaml of `jobs` jobs: every job changed, then one."""
    path = workdir / "many.yaml"

    def text(hour: int, odd_one: int) -> str:
        lines = ["version: 1", "jobs:"]
        for i in range(jobs):
            h = odd_one if i == 0 else hour
            lines += [
                f"  - id: job-{i}",
                f"    schedule: {{cron: '{i % 60} {h} * * *', timezone: Europe/Amsterdam}}",
                f"    targets: {{sites: ['site-{i}-*'], environment: live}}",
                "    actions: [backup, {update_plugins: {exclude: [woocommerce]}}, clear_cache]",
            ]
        return "\n".join(lines) + "\n"

    path.write_text(text(3, 3))
    config = config_module.load(path, {})
    engine = make_engine(f"sqlite:///{workdir / 'reload.db'}")
    upgrade(engine)
    daemon = Daemon(
        config,
        Collaborators(
            sql_store(engine),
            lambda job: None,  # type: ignore[arg-type,return-value]
            SystemClock(),
            lambda: config_module.load(path, {}),
            path,
            cancel=threading.Event(),
        ),
    )
    daemon.start(paused=True)
    try:
        path.write_text(text(4, 4))
        started = time.perf_counter()
        assert daemon.reload()
        every = time.perf_counter() - started
        path.write_text(text(4, 5))
        started = time.perf_counter()
        assert daemon.reload()
        one = time.perf_counter() - started
        assert len(daemon.scheduled_jobs()) == jobs
    finally:
        daemon.shutdown(timeout_s=1)
        engine.dispose()
    return every, one


def one_night(
    name: str, environments: int, scale: float, timeout_s: float, workdir: Path, sample: int
) -> tuple[Night, float | None]:
    """A night on a fresh sandbox (the same fleet every time); the history in `workdir` carries
    over, as it does from one night to the next. With a `sample`, after the night, the serial
    runner's seconds per environment (at this scale) on that many environments."""
    sites = environments * 2 // 3  # every other site also has a staging environment
    options = SandboxOptions(
        sites=sites, seed=SEED, time_scale=scale, per_minute=PER_MINUTE, window_s=60 * scale
    )
    with SandboxServer(Sandbox(options)) as sandbox:
        ran = run_night(sandbox, workdir, scale, timeout_s)
        night = measure(name, sandbox, ran, scale)
        per_env_serial = serial(sandbox, scale, sample) if sample else None
    return night, per_env_serial


def one_size(
    environments: int, scale: float, args: argparse.Namespace, want_serial: bool
) -> tuple[dict[str, Any], float | None]:
    """A cold night then a warm one on a history of their own; the serial runner's seconds per
    environment at Kinsta's pace (after the warm night) when `want_serial`."""
    started = time.monotonic()
    timeout = args.timeout or 2 * environments * 10 / PER_MINUTE * 60 * scale + 120
    serial_s = None
    nights = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "jobs.yaml").write_text(jobs_yaml(scale, args.concurrency, args.rollout))
        for name in ("cold", "warm"):
            sample = args.serial_sample if want_serial and name == "warm" else 0
            night, per_env = one_night(name, environments, scale, timeout, workdir, sample)
            nights.append(night)
            if not args.json:
                print_night(night)
            serial_s = per_env if per_env is not None else serial_s
    size = {
        "environments": nights[0].environments,
        "scale": scale,
        "window_s": round(60 * scale, 3),
        "concurrency": args.concurrency or "default",
        "rollout": args.rollout,
        "wall_s": round(time.monotonic() - started, 1),
        "nights": [asdict(n) for n in nights],
    }
    return size, None if serial_s is None else serial_s / scale


def print_night(n: Night) -> None:
    print(
        f"{n.environments} environments, {n.night}: scale {n.scale:g}, limit {n.limit} per "
        f"{60 * n.scale:g}s{'' if n.finished else f', DID NOT FINISH within {n.timeout_s:.0f} s'}"
    )
    print(
        f"  makespan {n.makespan_s:.1f}s = {n.makespan_over_bound:.2f} x bound {n.bound_s:.1f}s "
        f"{'' if n.finished else 'of the work done '}(rate floor {n.rate_floor_s:.1f}s, "
        f"longest pipeline {n.longest_pipeline_s:.1f}s); the trigger processes took "
        f"{n.process_wall_s:.1f}s from spawn to exit"
    )
    print(
        f"  {n.operations} operations, {n.requests} requests ({n.actions} actions, {n.polls} "
        f"polls, {n.other_requests} other): {n.requests_per_operation:.2f} per operation; "
        f"{n.rate_limited} x 429; most in a window {n.max_in_window}/{n.limit}; budget used "
        f"{n.utilisation_queued:.1%} while work was queued"
    )
    for p in n.processes:
        ended = "killed at the timeout" if p.exit_code is None else f"exit {p.exit_code}"
        print(
            f"  trigger {p.job}: {ended} after {p.seconds:.1f}s, peak {p.peak_threads} threads, "
            f"peak RSS {p.peak_rss_mb:.1f} MB, {p.cpu_s:.1f} CPU s ({p.samples} samples)"
        )
    print(
        f"  sandbox (this process) {n.sandbox_cpu_s:.1f} CPU s; all together "
        f"{n.cpu_share:.0%} of {os.cpu_count()} cores over their wall time"
    )
    print(
        "  other requests per environment: "
        + ", ".join(f"{k} {v:g}" for k, v in n.other_per_environment.items())
    )
    for plan in n.plan:
        predicted = (
            f"~{plan.predicted_requests} requests" if plan.predicted_requests is not None else "?"
        ) + (f", ~{plan.predicted_s:.0f}s" if plan.predicted_s is not None else ", ? s")
        ran = next((p.seconds for p in n.processes if p.job == plan.job), None)
        print(
            f"  plan {plan.job}: {predicted}{f' ({plan.note})' if plan.note else ''}; "
            f"the trigger ran {ran}s ({(ran or 0) / n.scale:.0f}s / scale)"
        )
    print(
        f"  the night did {n.requests} requests in {n.makespan_s:.1f}s "
        f"({n.makespan_s / n.scale:.0f}s / scale)"
    )
    print("  targets: " + ("met" if not n.missed else "MISSED " + "; ".join(n.missed)))


def sizes_and_scales(args: argparse.Namespace) -> list[tuple[int, float]]:
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.scale is None:
        return [(s, DEFAULT_SCALES.get(s, 0.1 if s <= 1000 else 0.05)) for s in sizes]
    scales = [float(s) for s in args.scale.split(",")]
    if len(scales) not in (1, len(sizes)):
        raise SystemExit("--scale: one value, or one per size")
    return list(zip(sizes, scales * len(sizes) if len(scales) == 1 else scales, strict=True))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="environments")
    parser.add_argument("--scale", help="one value, or one per size (default 0.1 and 0.05)")
    parser.add_argument("--timeout", type=float, help="seconds a night may take, then killed")
    parser.add_argument("--concurrency", type=int, help="set in both jobs (default: unset)")
    parser.add_argument(
        "--rollout",
        help="the night job's rollout, in YAML, e.g. '{canary: 3, waves: [10%%, 50%%, 100%%]}' "
        "(default: none), to see what waves cost in makespan",
    )
    parser.add_argument("--serial-sample", type=int, default=6)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logs.configure("warning", json=False)
    sizes, serial_kinsta = [], 0.0
    for index, (environments, scale) in enumerate(sizes_and_scales(args)):
        size, per_env = one_size(environments, scale, args, want_serial=index == 0)
        sizes.append(size)
        serial_kinsta = per_env if per_env is not None else serial_kinsta
    with tempfile.TemporaryDirectory() as tmp:
        rss, cpu = idle_daemon(Path(tmp), args.idle_seconds)
        every, one = reload_time(Path(tmp), 1000)
    once = Once(
        serial_kinsta_s_per_environment=round(serial_kinsta, 1),
        serial_sample=args.serial_sample,
        serial_scale=sizes[0]["scale"],
        idle_rss_mib=round(rss, 1),
        idle_cpu_percent=round(cpu, 2),
        reload_1000_jobs_s=round(every, 3),
        reload_1000_jobs_one_changed_s=round(one, 3),
    )
    for size in sizes:
        warm = size["nights"][-1]
        serial_total = serial_kinsta * size["environments"]
        size["serial_estimate_kinsta_s"] = round(serial_total)
        speedup = serial_total * size["scale"] / warm["makespan_s"]
        size["speedup_vs_serial"] = round(speedup, 1) if warm["finished"] else None
    body = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sizes": sizes,
        **asdict(once),
    }
    if args.json:
        print(json.dumps(body, indent=2))
        return
    print_once(once, sizes)
    print(json.dumps(body))


def print_once(once: Once, sizes: list[dict[str, Any]]) -> None:
    print(
        f"serial runner (one operation at a time, 3 s polls scaled), measured on "
        f"{once.serial_sample} environments at scale {once.serial_scale:g}: "
        f"{once.serial_kinsta_s_per_environment:.0f}s per environment at Kinsta's pace"
    )
    for size in sizes:
        print(
            f"  {size['environments']} environments: {size['serial_estimate_kinsta_s'] / 3600:.1f} h "
            f"serially, {speedup_text(size['speedup_vs_serial'])}; this size took "
            f"{size['wall_s'] / 60:.1f} min of wall clock"
        )
    print(f"daemon idle: {once.idle_rss_mib:.1f} MiB resident, {once.idle_cpu_percent:.2f}% CPU")
    print(
        f"reload of a 1,000-job jobs.yaml: {once.reload_1000_jobs_s:.2f}s (all changed), "
        f"{once.reload_1000_jobs_one_changed_s:.2f}s (one changed)"
    )


def speedup_text(speedup: float | None) -> str:
    if speedup is None:
        return "no speed-up: the warm night did not finish"
    return f"{speedup}x the warm night's makespan"


if __name__ == "__main__":
    main()
