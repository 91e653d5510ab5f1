"""trigger's progress display: a rich progress bar on a terminal (targets done / total, API
requests spent, the current wait for the rate governor), plain lines otherwise. On stderr, so
stdout keeps only the summary."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from scheduler import runner as runner_module
from scheduler.kinsta.governor import RateGovernor

REFRESH_S = 0.25


class Watch:
    def __init__(self) -> None:
        self._started = time.monotonic()

    def elapsed_s(self) -> float:
        return time.monotonic() - self._started


def _stats(governor: RateGovernor, base: int) -> str:
    wait = governor.current_wait_s()
    waiting = f", waiting {wait:.1f}s for rate budget" if wait >= 0.5 else ""
    return f"{governor.requests - base} request(s){waiting}"


@contextmanager
def shown(runner: runner_module.Runner, governor: RateGovernor, tty: bool) -> Iterator[Watch]:
    watch, base = Watch(), governor.requests
    if not tty:

        def line(event: runner_module.Progress) -> None:
            outcome = "failed" if event.failed else "done"
            sys.stderr.write(
                f"[{event.targets_done}/{event.targets_total}] {event.target}: {outcome} "
                f"({_stats(governor, base)})\n"
            )
            sys.stderr.flush()

        runner.on_progress = line
        try:
            yield watch
        finally:
            runner.on_progress = None
        return

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("targets  {task.fields[stats]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task = bar.add_task("running", total=None, stats="")
    failed = 0
    stop = threading.Event()

    def advance(event: runner_module.Progress) -> None:
        nonlocal failed
        failed += event.failed
        description = f"running ({failed} failed)" if failed else "running"
        bar.update(
            task, total=event.targets_total, completed=event.targets_done, description=description
        )

    def refresh() -> None:
        while not stop.wait(REFRESH_S):
            bar.update(task, stats=_stats(governor, base))

    runner.on_progress = advance
    ticker = threading.Thread(target=refresh, name="progress", daemon=True)
    with bar:
        ticker.start()
        try:
            yield watch
        finally:
            stop.set()
            ticker.join()
            bar.update(task, stats=_stats(governor, base))
            runner.on_progress = None
