"""Fleet benchmark: a realistic night against the sandbox, at Kinsta's limits, scaled in time.

Work: a `night` job (backup, update_plugins, clear_cache on every environment) and a
`daily-cache` job (clear_cache on every environment), started together by two `trigger`
processes that share the API key, as two jobs due at the same minute would. Kinsta's window and
every operation's duration are multiplied by the same --scale, so the night takes minutes.

Figures:
  makespan, the rate floor (the fewest requests this work needs, one action request and one
    poll per operation plus the reads, divided by the allowed rate), and the longest chain on
    one environment; target: makespan <= 1.10 x max(floor, chain)
  requests per async operation (target <= 2.3), 429s (target 0), the most requests in any
    window against the limit, and budget utilisation while work was queued (target >= 95%)
  the same work done serially (one operation at a time, polled every 3 s scaled, as simple
    clients do), measured on a sample of environments and extrapolated linearly (a serial run
    is linear in the environments), and the ratio between the two
  the daemon's idle resident memory and CPU, and the time it takes to reload a jobs.yaml of
    1,000 jobs

    python benchmarks/fleet.py [--environments 300] [--scale 0.1] [--serial-sample 6] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scheduler import config as config_module
from scheduler import logs
from scheduler.clock import SystemClock
from scheduler.daemon import Collaborators, Daemon
from scheduler.domain import Polling, RateLimits, Secret
from scheduler.history import make_engine, sql_store
from scheduler.history.migrate import upgrade
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.kinsta.operations import wait_for_operation
from scheduler.sandbox import Sandbox, SandboxOptions, SandboxServer
from scheduler.sandbox.server import max_in_window
from scheduler.sandbox.state import ACTION_DURATION_S

PER_MINUTE = 120
EXE = str(Path(sys.executable).with_name("kinsta-scheduler"))
ASYNC = ("backups:add-manual", "wp-plugins:bulk-update", "cache:clear")
CHAIN = ("backups:add-manual", "wp-plugins:bulk-update", "cache:clear", "cache:clear")


@dataclass
class Night:
    night: str
    environments: int
    scale: float
    operations: int
    requests: int
    polls: int
    rate_limited: int
    max_in_window: int
    limit: int
    utilisation_queued: float
    requests_per_operation: float
    makespan_s: float
    rate_floor_s: float
    longest_chain_s: float
    target_s: float
    meets_makespan: bool
    failed_triggers: int


@dataclass
class Daemon_:
    serial_estimate_s: float
    serial_sample: int
    idle_rss_mib: float
    idle_cpu_percent: float
    reload_1000_jobs_s: float
    reload_1000_jobs_one_changed_s: float


def jobs_yaml(scale: float) -> str:
    return f"""version: 1
kinsta:
  rate_limits: {{per_minute: {PER_MINUTE}, window: {60 * scale}s}}
  polling: {{first_poll: {3 * scale}s, max_interval: {30 * scale}s, not_found_grace: {30 * scale}s, deadline: {1800 * scale}s}}
jobs:
  - id: night
    targets: {{environment: all}}
    concurrency: 64
    actions: [backup, update_plugins, clear_cache]
  - id: daily-cache
    targets: {{environment: all}}
    concurrency: 64
    actions: [clear_cache]
"""


def run_night(sandbox: SandboxServer, workdir: Path, scale: float) -> tuple[float, int]:
    env = {
        **os.environ,
        "KINSTA_API_URL": sandbox.url,
        "KINSTA_API_KEY": sandbox.sandbox.options.api_key,
        "KINSTA_SCHEDULER_DATABASE_URL": f"sqlite:///{workdir / 'history.db'}",
    }
    subprocess.run(
        [EXE, "--config", str(workdir / "jobs.yaml"), "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
    )
    started = time.monotonic()
    processes = []
    for job in ("night", "daily-cache"):
        log = (workdir / f"{job}.log").open("w")
        processes.append(
            subprocess.Popen(
                [
                    EXE,
                    "--config",
                    str(workdir / "jobs.yaml"),
                    "--log-level",
                    "warning",
                    "trigger",
                    job,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    codes = [p.wait() for p in processes]
    makespan = time.monotonic() - started
    if any(code not in (0, 1) for code in codes):
        logs = "".join((workdir / f"{j}.log").read_text()[-3000:] for j in ("night", "daily-cache"))
        raise SystemExit(f"trigger exited {codes}\n{logs}")
    return makespan, sum(codes)


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


def one_night(name: str, args: argparse.Namespace, workdir: Path) -> tuple[Night, float]:
    """A night on a fresh sandbox (the same fleet every time); the history in `workdir` carries
    over, as it does from one night to the next. Returns the figures and the serial estimate."""
    scale = args.scale
    sites = args.environments * 2 // 3  # every other site also has a staging environment
    options = SandboxOptions(
        sites=sites, seed=23, time_scale=scale, per_minute=PER_MINUTE, window_s=60 * scale
    )
    with SandboxServer(Sandbox(options)) as sandbox:
        fleet = sandbox.sandbox.fleet
        environments = sum(len(s.environments) for s in fleet.sites)
        time.sleep(60 * scale * 1.05)  # the shared ledger forgets the previous night
        makespan, failures = run_night(sandbox, workdir, scale)
        stats = sandbox.sandbox.stats
        arrivals = list(stats.arrivals)
        polls = stats.by_operation.get("getOperationStatus", 0)
        async_ops = sum(
            n for env in fleet.counters().values() for k, n in env.items()
            if k.endswith(":accepted") and k.rsplit(":", 1)[0] in ASYNC
        )  # fmt: skip
        requests = len(arrivals)
        window = 60 * scale
        # The fewest requests this work needs: everything sent but the polls, plus one poll
        # per operation (an oracle that knew when each operation ends).
        floor_requests = requests - polls + async_ops
        rate_floor = max(0.0, floor_requests - PER_MINUTE) / PER_MINUTE * window
        chain = sum(ACTION_DURATION_S[k] for k in CHAIN) * scale
        # Utilisation while work was queued: from the first request to the moment only one
        # window's worth remained. A sliding window allows L requests at once, then L more per
        # window: L x (span / W + 1) in a span.
        queued_until = arrivals[max(0, requests - PER_MINUTE - 1)]
        allowed = PER_MINUTE * ((queued_until - arrivals[0]) / window + 1)
        sent = requests - PER_MINUTE
        utilisation = sent / allowed if allowed > 0 else 0.0
        per_env_serial = serial(sandbox, scale, args.serial_sample) if name == "warm" else 0.0
        target = 1.10 * max(rate_floor, chain)
        figures = Night(
            night=name,
            environments=environments,
            scale=scale,
            operations=async_ops,
            requests=requests,
            polls=polls,
            rate_limited=stats.rate_limited,
            max_in_window=max_in_window(arrivals, window),
            limit=PER_MINUTE,
            utilisation_queued=round(utilisation, 4),
            requests_per_operation=round(requests / async_ops, 3),
            makespan_s=round(makespan, 1),
            rate_floor_s=round(rate_floor, 1),
            longest_chain_s=round(chain, 1),
            target_s=round(target, 1),
            meets_makespan=makespan <= target,
            failed_triggers=failures,
        )
    return figures, per_env_serial * environments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--environments", type=int, default=300)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--serial-sample", type=int, default=6)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    logs.configure("warning", json=False)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "jobs.yaml").write_text(jobs_yaml(args.scale))
        cold, _ = one_night("cold", args, workdir)
        warm, serial_s = one_night("warm", args, workdir)
    with tempfile.TemporaryDirectory() as tmp:
        rss, cpu = idle_daemon(Path(tmp), args.idle_seconds)
        every, one = reload_time(Path(tmp), 1000)
    daemon = Daemon_(
        serial_estimate_s=round(serial_s, 1),
        serial_sample=args.serial_sample,
        idle_rss_mib=round(rss, 1),
        idle_cpu_percent=round(cpu, 2),
        reload_1000_jobs_s=round(every, 3),
        reload_1000_jobs_one_changed_s=round(one, 3),
    )
    body: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "nights": [asdict(cold), asdict(warm)],
        "speedup_vs_serial": round(serial_s / warm.makespan_s, 1),
        **asdict(daemon),
    }
    if args.json:
        print(json.dumps(body, indent=2))
        return
    print(
        f"fleet night: {warm.environments} environments x (backup, update_plugins, clear_cache) "
        f"+ a clear_cache job; limit {PER_MINUTE} per {60 * args.scale:g}s (scale {args.scale})"
    )
    print(
        f"{'night':6} {'ops':>5} {'requests':>8} {'polls':>6} {'req/op':>7} {'429s':>5} "
        f"{'max/window':>10} {'util.':>6} {'makespan':>9} {'floor':>7} {'chain':>6} {'target':>7}"
    )
    for n in (cold, warm):
        print(
            f"{n.night:6} {n.operations:>5} {n.requests:>8} {n.polls:>6} "
            f"{n.requests_per_operation:>7.2f} {n.rate_limited:>5} {n.max_in_window:>6}/{n.limit:<3} "
            f"{n.utilisation_queued:>6.1%} {n.makespan_s:>8.1f}s {n.rate_floor_s:>6.1f}s "
            f"{n.longest_chain_s:>5.1f}s {n.target_s:>6.1f}s {'met' if n.meets_makespan else 'MISSED'}"
        )
    print(
        f"serial runner (one operation at a time, 3 s polls scaled), extrapolated from "
        f"{daemon.serial_sample} environments: {daemon.serial_estimate_s:.0f}s, "
        f"{body['speedup_vs_serial']}x the warm night's makespan"
    )
    print(
        f"daemon idle: {daemon.idle_rss_mib:.1f} MiB resident, {daemon.idle_cpu_percent:.2f}% CPU"
    )
    print(
        f"reload of a 1,000-job jobs.yaml: {daemon.reload_1000_jobs_s:.2f}s (all changed), "
        f"{daemon.reload_1000_jobs_one_changed_s:.2f}s (one changed)"
    )
    print(json.dumps(body))


if __name__ == "__main__":
    main()
