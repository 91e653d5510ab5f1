"""What the fleet benchmark measures of the processes it starts (fleet.py's helpers).

`run_triggers` starts one `trigger` process per job, samples each one's /proc/<pid>/status
every 0.2 s from a thread (Threads, VmHWM), reaps them with os.wait4 (CPU seconds and maximum
resident memory at exit) and kills the ones still running at the timeout. `plan_prediction`
asks `kinsta-scheduler plan --format json` what it expects of each job, and says which figure
its JSON lacks instead of inventing it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_EVERY_S = 0.2
REAP_EVERY_S = 0.05


@dataclass
class ProcessFigures:
    job: str
    exit_code: int | None  # None: still running at the timeout, killed
    seconds: float
    peak_threads: int
    peak_rss_mb: float  # MiB: the larger of the sampled VmHWM and wait4's ru_maxrss
    cpu_s: float  # user + system, from wait4
    samples: int


@dataclass
class PlanFigures:
    job: str
    predicted_requests: int | None
    predicted_s: float | None
    note: str  # why a figure is missing ("" when both are there)


class Sampler(threading.Thread):
    """Peak thread count and peak resident memory of processes, read from /proc every
    `every_s` until stopped; a pid leaves the set once reaped (`forget`), as pids are reused."""

    def __init__(self, pids: list[int], every_s: float = SAMPLE_EVERY_S) -> None:
        super().__init__(name="fleet-sampler", daemon=True)
        self.every_s = every_s
        self.threads = dict.fromkeys(pids, 0)
        self.hwm_kib = dict.fromkeys(pids, 0)
        self.samples = dict.fromkeys(pids, 0)
        self._live = set(pids)
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                for pid in self._live:
                    self._sample(pid)
            self._stopping.wait(self.every_s)

    def forget(self, pid: int) -> None:
        with self._lock:
            self._live.discard(pid)

    def stop(self) -> None:
        self._stopping.set()
        self.join()

    def _sample(self, pid: int) -> None:
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if "VmHWM" not in fields:  # a zombie: its memory is gone, its one thread too
            return
        self.samples[pid] += 1
        self.threads[pid] = max(self.threads[pid], int(fields["Threads"]))
        self.hwm_kib[pid] = max(self.hwm_kib[pid], int(fields["VmHWM"].split()[0]))


def run_triggers(
    exe: str, config: Path, jobs: tuple[str, ...], env: dict[str, str], timeout_s: float
) -> tuple[list[ProcessFigures], float, bool]:
    """Start `trigger JOB` for every job at once; wait for them all or for `timeout_s`, then
    kill what still runs. Returns each process's figures, the makespan and whether all ended."""
    started = time.monotonic()
    processes: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}
    for job in jobs:
        with (config.parent / f"{job}.log").open("w") as log:
            command = [exe, "--config", str(config), "--log-level", "warning", "trigger", job]
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        processes[process.pid] = (job, process)
    sampler = Sampler(list(processes))
    sampler.start()
    done: dict[int, tuple[int | None, float, Any]] = {}
    killed: set[int] = set()
    while len(done) < len(processes):
        for pid, (_, process) in processes.items():
            if pid in done:
                continue
            got, status, usage = os.wait4(pid, 0 if killed else os.WNOHANG)
            if got:
                sampler.forget(pid)
                code = os.waitstatus_to_exitcode(status)
                process.returncode = code  # reaped here: Popen must not wait for it again
                done[pid] = (None if pid in killed else code, time.monotonic() - started, usage)
        if not killed and len(done) < len(processes) and time.monotonic() - started > timeout_s:
            killed = set(processes) - set(done)
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
        time.sleep(REAP_EVERY_S)
    sampler.stop()
    makespan = max(seconds for _, seconds, _ in done.values())
    figures = [
        ProcessFigures(
            job=processes[pid][0],
            exit_code=code,
            seconds=round(seconds, 1),
            peak_threads=sampler.threads[pid],
            peak_rss_mb=round(max(sampler.hwm_kib[pid], usage.ru_maxrss) / 1024, 1),
            cpu_s=round(usage.ru_utime + usage.ru_stime, 1),
            samples=sampler.samples[pid],
        )
        for pid, (code, seconds, usage) in done.items()
    ]
    return figures, makespan, not killed


def plan_prediction(
    exe: str, config: Path, jobs: tuple[str, ...], env: dict[str, str]
) -> list[PlanFigures]:
    """`plan --format json`'s predicted requests and run length of each job (targets resolved
    against the sandbox named by `env`, durations learned from the history it names)."""
    command = [exe, "--config", str(config), "--log-level", "warning", "plan", "--format", "json"]
    done = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return [PlanFigures(job, None, None, f"plan failed: {why}") for job in jobs]
    rows = {row.get("job_id"): row for row in json.loads(done.stdout)}
    return [_plan_row(job, rows.get(job)) for job in jobs]


def _plan_row(job: str, row: dict[str, Any] | None) -> PlanFigures:
    if row is None:
        return PlanFigures(job, None, None, "plan's JSON has no row for this job")
    fields = ("requests", "duration_minutes")
    notes = [f"plan's JSON has no {field!r}" for field in fields if field not in row]
    requests, minutes = row.get("requests"), row.get("duration_minutes")
    if not notes and (requests is None or minutes is None):
        notes.append(f"plan gave no estimate ({row.get('targets_note') or 'no reason given'})")
    return PlanFigures(
        job,
        requests if isinstance(requests, int) else None,
        round(minutes * 60, 1) if isinstance(minutes, int | float) else None,
        "; ".join(notes),
    )
