"""Rate-governor benchmark: a fleet through the real CLI against the sandbox, at Kinsta's limits.

Kinsta allows 120 requests per 60 s per company. Here the window and every operation's duration
are scaled by the same factor (--scale 0.1: 120 requests per 6 s, a 4 s cache clear takes 0.4 s),
so the run takes a minute instead of ten. The sandbox enforces the limit and answers 429 beyond
it. Three runs, each clearing the cache of every environment:
  cold  - one `trigger` process, no history yet (polls start at `first_poll`);
  warm  - one process again, polls now timed from the durations history learned;
  2-proc - two `trigger` processes at once, each with half the fleet, sharing the key.

    python benchmarks/governor.py [--environments 300] [--scale 0.1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from scheduler.sandbox import Sandbox, SandboxOptions, SandboxServer
from scheduler.sandbox.server import max_in_window

PER_MINUTE = 120
EXE = str(Path(sys.executable).with_name("kinsta-scheduler"))


@dataclass
class Figures:
    run: str
    processes: int
    operations: int
    requests: int
    rate_limited: int
    max_in_window: int
    limit: int
    utilisation: float
    requests_per_operation: float
    action_and_poll_requests_per_operation: float
    makespan_s: float
    floor_s: float


def jobs_yaml(scale: float, sites: str) -> str:
    return f"""version: 1
kinsta:
  rate_limits: {{per_minute: {PER_MINUTE}, window: {60 * scale}s}}
  polling: {{first_poll: {3 * scale}s, max_interval: {30 * scale}s, not_found_grace: {30 * scale}s}}
jobs:
  - id: bench
    targets: {{sites: ["{sites}"], environment: all}}
    actions: [clear_cache]
    concurrency: 32
"""


def trigger(
    workdir: Path, sandbox: SandboxServer, database: Path, index: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KINSTA_API_URL": sandbox.url,
        "KINSTA_API_KEY": sandbox.sandbox.options.api_key,
        "KINSTA_SCHEDULER_DATABASE_URL": f"sqlite:///{database}",
    }
    config = workdir / f"jobs-{index}.yaml"
    log = (workdir / f"trigger-{index}.log").open("w")
    return subprocess.Popen(
        [EXE, "--config", str(config), "--log-level", "warning", "trigger", "bench"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def measure(
    name: str, sandbox: SandboxServer, workdir: Path, database: Path, configs: int, scale: float
) -> Figures:
    # The ledger remembers the previous run's requests for one window (as it must: the budget is
    # shared over time too); let it drain so each run starts with a fresh night's budget.
    time.sleep(60 * scale * 1.05)
    stats = sandbox.sandbox.stats
    first_arrival, before = len(stats.arrivals), dict(stats.by_operation)
    limited_before = stats.rate_limited
    started = time.monotonic()
    processes = [trigger(workdir, sandbox, database, i) for i in range(configs)]
    codes = [p.wait() for p in processes]
    makespan = time.monotonic() - started
    if any(codes):
        logs = "".join((workdir / f"trigger-{i}.log").read_text()[-3000:] for i in range(configs))
        raise SystemExit(f"{name}: trigger exited {codes}\n{logs}")
    arrivals = stats.arrivals[first_arrival:]
    counts = {k: v - before.get(k, 0) for k, v in stats.by_operation.items()}
    operations = counts.get("clearSiteCache", 0)
    requests = len(arrivals)
    window_s = 60 * scale
    busy_s = arrivals[-1] - arrivals[0]
    allowed = PER_MINUTE * busy_s / window_s
    return Figures(
        run=name,
        processes=configs,
        operations=operations,
        requests=requests,
        rate_limited=stats.rate_limited - limited_before,
        max_in_window=max_in_window(arrivals, window_s),
        limit=PER_MINUTE,
        utilisation=round(requests / allowed, 4) if allowed else 0.0,
        requests_per_operation=round(requests / operations, 3),
        action_and_poll_requests_per_operation=round(
            (operations + counts.get("getOperationStatus", 0)) / operations, 3
        ),
        makespan_s=round(makespan, 2),
        floor_s=round(requests / PER_MINUTE * window_s, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--environments", type=int, default=300)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    sites = args.environments * 2 // 3  # every other site also has a staging environment
    options = SandboxOptions(
        sites=sites, seed=11, time_scale=args.scale, per_minute=PER_MINUTE, window_s=60 * args.scale
    )
    results: list[Figures] = []
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(Sandbox(options)) as sandbox:
        workdir = Path(tmp)
        database = workdir / "history.db"
        (workdir / "jobs-0.yaml").write_text(jobs_yaml(args.scale, "*"))
        results.append(measure("cold", sandbox, workdir, database, 1, args.scale))
        results.append(measure("warm", sandbox, workdir, database, 1, args.scale))
        (workdir / "jobs-0.yaml").write_text(jobs_yaml(args.scale, "*[13579]"))
        (workdir / "jobs-1.yaml").write_text(jobs_yaml(args.scale, "*[02468]"))
        results.append(measure("2-proc", sandbox, workdir, database, 2, args.scale))
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return
    print(
        f"{args.environments} environments, clear_cache each; limit {PER_MINUTE} per {60 * args.scale:g}s (scale {args.scale})"
    )
    header = f"{'run':8} {'procs':>5} {'ops':>5} {'requests':>8} {'429s':>5} {'max/window':>10} {'utilisation':>11} {'req/op':>7} {'makespan':>9} {'floor':>7}"
    print(header)
    for r in results:
        print(
            f"{r.run:8} {r.processes:>5} {r.operations:>5} {r.requests:>8} {r.rate_limited:>5} "
            f"{r.max_in_window:>6}/{r.limit:<3} {r.utilisation:>11.1%} {r.requests_per_operation:>7.2f} "
            f"{r.makespan_s:>8.1f}s {r.floor_s:>6.1f}s"
        )
    print(json.dumps([asdict(r) for r in results]))


if __name__ == "__main__":
    main()
