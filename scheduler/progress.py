"""trigger's progress display: a rich progress bar on a terminal (targets done / total, API
requests spent, the current wait for the rate governor), plain lines otherwise. On stderr, so
stdout keeps only the summary. It subscribes to the bus's TargetFinished events for the
duration of one run."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from scheduler.events import Bus, TargetFinished
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
def shown(
    bus: Bus, governor: RateGovernor, tty: bool, console: Console | None = None
) -> Iterator[Watch]:
    """Show the run's progress while the block runs, from the bus's TargetFinished events. On
    a terminal, lines written to stderr meanwhile (the log) are printed above the bar."""
    watch, base = Watch(), governor.requests
    bar = _bar(governor, base, console or Console(stderr=True))
    with bar if tty else _lines(governor, base) as subscriber:
        unsubscribe = bus.subscribe(TargetFinished, subscriber)
        try:
            yield watch
        finally:
            unsubscribe()


@contextmanager
def _lines(governor: RateGovernor, base: int) -> Iterator[Callable[[TargetFinished], None]]:
    def line(event: TargetFinished) -> None:
        outcome = "failed" if event.failed else "done"
        sys.stderr.write(
            f"[{event.targets_done}/{event.targets_total}] {event.target}: {outcome} "
            f"({_stats(governor, base)})\n"
        )
        sys.stderr.flush()

    yield line


@contextmanager
def _bar(
    governor: RateGovernor, base: int, console: Console
) -> Iterator[Callable[[TargetFinished], None]]:
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("targets  {task.fields[stats]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        redirect_stderr=True,  # the log's lines (logs._Stderr) go above the bar
    )
    task = bar.add_task("running", total=None, stats="")
    failed = 0
    stop = threading.Event()

    def advance(event: TargetFinished) -> None:
        nonlocal failed
        failed += event.failed
        description = f"running ({failed} failed)" if failed else "running"
        bar.update(
            task, total=event.targets_total, completed=event.targets_done, description=description
        )

    def refresh() -> None:
        while not stop.wait(REFRESH_S):
            bar.update(task, stats=_stats(governor, base))

    ticker = threading.Thread(target=refresh, name="progress", daemon=True)
    with bar:
        ticker.start()
        try:
            yield advance
        finally:
            stop.set()
            ticker.join()
            bar.update(task, stats=_stats(governor, base))
