"""The daemon's parts on their own, with fakes and an injected clock (no sleeping, no
APScheduler, no database): what a reload changes, the outbox of unrecorded slots, health, and
watching jobs.yaml."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from scheduler import config as config_module
from scheduler.daemon import jobs, outbox
from scheduler.daemon.health import DatabasePing, LoopBeat, verdict
from scheduler.daemon.outbox import Outbox
from scheduler.daemon.reload import ConfigWatcher
from scheduler.domain import Config, Run, RunStatus, RunTrigger
from scheduler.errors import ConfigError, Problem, StoreError
from scheduler.history import HistoryStore
from tests.conftest import FakeClock

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
JOB = "  - id: {id}\n    schedule: {schedule}\n    actions: [clear_cache]\n"


def load(tmp_path: Path, *entries: tuple[str, str]) -> Config:
    path = tmp_path / "jobs.yaml"
    path.write_text(
        "version: 1\njobs:\n" + "".join(JOB.format(id=i, schedule=s) for i, s in entries)
    )
    return config_module.load(path, {})


# --- jobs.diff ------------------------------------------------------------------------------------


def test_a_first_config_adds_every_scheduled_job(tmp_path: Path) -> None:
    new = load(tmp_path, ("a", "{every: 1h}"), ("b", "{cron: '0 3 * * *'}"))
    changes = jobs.diff(None, new)
    assert list(changes.changed) == ["a", "b"] and changes.removed == ()
    assert changes.summary() == {"added": ["a", "b"], "changed": [], "removed": []}


def test_only_what_differs_is_rescheduled(tmp_path: Path) -> None:
    old = load(tmp_path, ("a", "{every: 1h}"), ("b", "{every: 1h}"), ("c", "{every: 1h}"))
    new = load(tmp_path, ("a", "{every: 1h}"), ("b", "{every: 2h}"), ("d", "{every: 1h}"))
    changes = jobs.diff(old, new)
    assert changes.summary() == {"added": ["d"], "changed": ["b"], "removed": ["c"]}
    assert changes.changed["b"] == new.job("b") and changes.before["b"] == old.job("b")


def test_an_unchanged_config_changes_nothing(tmp_path: Path) -> None:
    config = load(tmp_path, ("a", "{every: 1h}"))
    assert jobs.diff(config, config).summary() == {"added": [], "changed": [], "removed": []}


# --- the outbox -----------------------------------------------------------------------------------


class FakeStore:
    """record_run as the history store's run ledger does it: None when the slot has a row
    already; a database that can be down (which the in-memory store cannot be)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, datetime], Run] = {}
        self.down = False
        self.ids = itertools.count(1)
        self.runs = self.maintenance = self  # the two ports the outbox and the ping use

    def record_run(
        self,
        job_id: str,
        trigger: RunTrigger,
        scheduled_for: datetime,
        now: datetime,
        *,
        status: RunStatus,
        error: str,
    ) -> Run | None:
        if self.down:
            raise StoreError("unreachable", transient=True)
        if (job_id, scheduled_for) in self.rows:
            return None
        run = Run(next(self.ids), job_id, trigger, scheduled_for, now, now, status, error=error)
        self.rows[job_id, scheduled_for] = run
        return run

    def ping(self) -> None:
        if self.down:
            raise StoreError("unreachable", transient=True)


class Heard:
    def __init__(self) -> None:
        self.recorded: list[Run] = []
        self.missed: list[tuple[str, list[datetime], str]] = []

    def outbox(self, store: FakeStore, clock: FakeClock) -> Outbox:
        return Outbox(
            cast(HistoryStore, store),
            clock,
            self.recorded.append,
            lambda job_id, slots, reason: self.missed.append((job_id, slots, reason)),
        )


def test_rows_wait_while_the_database_is_down_and_are_written_once_it_answers() -> None:
    store, heard, clock = FakeStore(), Heard(), FakeClock(T0)
    box = heard.outbox(store, clock)
    store.down = True
    box.add("a", T0, RunStatus.SKIPPED, "busy")
    box.add("a", T0 + timedelta(hours=1), RunStatus.MISSED, "late")
    assert box.flush() == 0 and len(box) == 2 and box.holds("a", T0)
    store.down = False
    assert box.flush() == 2 and len(box) == 0
    assert [r.status for r in heard.recorded] == [RunStatus.SKIPPED, RunStatus.MISSED]
    assert heard.missed == [("a", [T0 + timedelta(hours=1)], "late")]  # one notification


def test_a_row_waits_for_its_time_unless_everything_is_flushed() -> None:
    store, heard, clock = FakeStore(), Heard(), FakeClock(T0)
    box = heard.outbox(store, clock)
    box.add("a", T0, RunStatus.MISSED, "grace", not_before=T0 + timedelta(minutes=5))
    assert box.flush() == 0
    clock.advance(300)
    assert box.flush() == 1
    box.add("a", T0 + timedelta(hours=1), RunStatus.MISSED, "x", T0 + timedelta(days=1))
    assert box.flush(everything=True) == 1


def test_a_slot_another_process_recorded_is_not_written_again() -> None:
    store, heard, clock = FakeStore(), Heard(), FakeClock(T0)
    store.record_run("a", RunTrigger.SCHEDULE, T0, T0, status=RunStatus.SUCCEEDED, error="")
    box = heard.outbox(store, clock)
    box.add("a", T0, RunStatus.MISSED, "lost")
    assert box.flush() == 1 and len(box) == 0
    assert heard.recorded == [] and heard.missed == []


def test_a_full_outbox_drops_the_oldest_and_says_so_in_the_jobs_next_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbox, "UNRECORDED_BUFFER", 2)
    store, heard, clock = FakeStore(), Heard(), FakeClock(T0)
    box = heard.outbox(store, clock)
    for hour in range(4):
        box.add("a", T0 + timedelta(hours=hour), RunStatus.MISSED, "down")
    assert len(box) == 2 and box.dropped == 2
    assert box.flush() == 2
    first, second = heard.recorded
    assert "(and 2 earlier slot(s) of this job" in (first.error or "")
    assert second.error == "down"


# --- health ---------------------------------------------------------------------------------------


def test_the_loop_is_alive_while_it_beats() -> None:
    clock = FakeClock(T0)
    beat = LoopBeat(clock, stale_after_s=11)
    clock.advance(10)
    assert beat.alive()
    clock.advance(2)
    assert not beat.alive()
    beat.beat()
    assert beat.alive()


def test_the_database_ping_is_cached_between_checks() -> None:
    store, clock = FakeStore(), FakeClock(T0)
    ping = DatabasePing(cast(HistoryStore, store), clock)
    assert ping.problem() is None
    store.down = True
    assert ping.problem() is None  # the answer of a moment ago
    clock.advance(6)
    assert ping.problem() == "unreachable"


def test_health_says_what_is_wrong_and_what_waits() -> None:
    assert verdict(True, None, 0) == (True, "ok")
    assert verdict(True, None, 3) == (True, "ok; 3 row(s) wait for the database")
    healthy, why = verdict(False, "locked", 0)
    assert not healthy
    assert why == ("the scheduler loop is not running; the history database is unreachable: locked")


# --- watching jobs.yaml ---------------------------------------------------------------------------


class Watched:
    def __init__(self, tmp_path: Path) -> None:
        self.config = load(tmp_path, ("a", "{every: 1h}"))
        self.path = tmp_path / "jobs.yaml"
        self.events: list[tuple[str, str]] = []
        self.applied: list[Config] = []
        self.restored: list[Config] = []
        self.watcher = ConfigWatcher(
            self.path, lambda: config_module.load(self.path, {}), self._event
        )

    def _event(self, kind: str, detail: str) -> None:
        self.events.append((kind, detail))

    def apply(self, new: Config) -> dict[str, list[str]]:
        self.applied.append(new)
        return jobs.diff(self.config, new).summary()

    def reload(self) -> bool:
        return self.watcher.reload(self.config, self.apply, self.restored.append)


def test_an_unchanged_file_is_not_reloaded(tmp_path: Path) -> None:
    watched = Watched(tmp_path)
    assert not watched.reload() and watched.applied == [] and watched.events == []


def test_a_changed_file_is_applied_and_recorded(tmp_path: Path) -> None:
    watched = Watched(tmp_path)
    watched.path.write_text(watched.path.read_text().replace("1h", "2h"))
    assert watched.reload()
    (kind, detail), = watched.events  # fmt: skip
    assert kind == "config_reloaded" and detail.endswith("; changed: a")


def test_an_invalid_file_is_rejected_and_changes_nothing(tmp_path: Path) -> None:
    watched = Watched(tmp_path)
    watched.path.write_text("version: 1\njobs:\n  - id: x\n    actions: [nope]\n")
    assert not watched.reload()
    assert watched.applied == [] and watched.restored == []
    assert [k for k, _ in watched.events] == ["config_rejected"]


def test_a_missing_file_is_said_once(tmp_path: Path) -> None:
    watched = Watched(tmp_path)
    watched.path.unlink()
    assert not watched.reload() and not watched.reload()
    assert [k for k, _ in watched.events] == ["config_missing"]


def test_a_failure_half_way_restores_the_last_good_schedule(tmp_path: Path) -> None:
    watched = Watched(tmp_path)

    def broken(new: Config) -> dict[str, list[str]]:
        raise RuntimeError("a bug half way")

    watched.path.write_text(watched.path.read_text() + "# edited\n")
    assert not watched.watcher.reload(watched.config, broken, watched.restored.append)
    assert watched.restored == [watched.config]
    ((kind, detail),) = watched.events
    assert kind == "config_rejected" and "RuntimeError: a bug half way" in detail


def test_a_schedule_apply_rejects_is_not_restored(tmp_path: Path) -> None:
    watched = Watched(tmp_path)

    def rejects(new: Config) -> dict[str, list[str]]:
        raise ConfigError([Problem(str(watched.path), None, "never fires", "a", "schedule")])

    watched.path.write_text(watched.path.read_text() + "# edited\n")
    assert not watched.watcher.reload(watched.config, rejects, watched.restored.append)
    assert watched.restored == []  # apply changed nothing
    assert watched.events[0][0] == "config_rejected" and "never fires" in watched.events[0][1]
