"""A PostgreSQL outage in the middle of a run: writes retry with backoff, the run finishes, and
no record is lost. The outage is real at the network level: the store talks to PostgreSQL
through a TCP relay that the test cuts (dropping every connection and refusing new ones)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import make_url

from scheduler.clock import SystemClock
from scheduler.domain import (
    ActionSpec,
    Job,
    Polling,
    RateLimits,
    Run,
    RunStatus,
    RunTrigger,
    Secret,
    TargetSelector,
    TaskStatus,
)
from scheduler.errors import StoreError
from scheduler.history import SqlHistoryStore, make_engine, sql_store
from scheduler.history.migrate import upgrade
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.runner import Runner
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from tests.conftest import _reset_pg
from tests.relay import Relay

pytestmark = pytest.mark.pg


@pytest.fixture
def relayed_store(pg_url: str) -> Iterator[tuple[SqlHistoryStore, Relay]]:
    _reset_pg(pg_url)
    url = make_url(pg_url)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    engine = make_engine(url.set(host="127.0.0.1", port=relay.port).render_as_string(False))
    upgrade(engine)
    yield sql_store(engine, retry_s=30), relay
    engine.dispose()
    relay.close()


def test_a_run_survives_a_database_outage(
    relayed_store: tuple[SqlHistoryStore, Relay], sandbox: SandboxServer
) -> None:
    store, relay = relayed_store
    clock = SystemClock()
    client = KinstaClient(
        sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
    )
    polling = Polling(first_poll_s=0.05, max_interval_s=0.2, not_found_grace_s=5, deadline_s=30)
    runner = Runner(client, store, clock, polling, sandbox.sandbox.fleet.company_id, started_by="t")
    sandbox.sandbox.fleet.time_scale = 0.05  # restart_php: 0.5 to 3 s, clear_cache half that
    job = Job(
        id="outage",
        schedule=None,
        targets=TargetSelector(),
        actions=(ActionSpec("restart_php"), ActionSpec("clear_cache")),
        concurrency=2,
    )
    result: list[Run | None] = []
    thread = threading.Thread(
        target=lambda: result.append(runner.run(job, RunTrigger.MANUAL, datetime.now(UTC)))
    )
    thread.start()
    time.sleep(0.8)
    relay.cut()
    with pytest.raises(StoreError) as down:
        sql_store(store.engine).maintenance.ping()  # no retry: it is really down
    assert down.value.transient
    time.sleep(2.5)
    relay.restore()
    thread.join(timeout=60)
    client.close()

    (run,) = result
    assert run is not None and run.status is RunStatus.SUCCEEDED
    tasks = store.tasks.run_tasks(run.run_id)
    assert len(tasks) == 12 and {t.status for t in tasks} == {TaskStatus.SUCCEEDED}
    assert all(t.operations and t.operations[-1].finished_at for t in tasks)
    effects = sandbox.sandbox.fleet.counters()
    assert sum(c.get("php:restart:accepted", 0) for c in effects.values()) == 6  # none repeated


def test_shutdown_ends_the_retries_of_a_write_at_once(
    relayed_store: tuple[SqlHistoryStore, Relay],
) -> None:
    """A write retrying through an outage (db_retry: 30 s here) gives up as soon as the
    process stops: shutdown must not wait out every write's retry window."""
    store, relay = relayed_store
    relay.cut()
    threading.Timer(1.0, store.stop.set).start()
    began = time.monotonic()
    with pytest.raises(StoreError):
        store.runs.claim_run(
            "j", RunTrigger.SCHEDULE, datetime.now(UTC), datetime.now(UTC), started_by="t"
        )
    assert time.monotonic() - began < 5
