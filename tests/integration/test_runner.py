"""A run from target resolution to recorded history, over real HTTP and a real database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scheduler.actions.catalogue import CATALOGUE
from scheduler.clock import CancelScope, SystemClock
from scheduler.domain import (
    ActionSpec,
    Job,
    Polling,
    RateLimits,
    RunStatus,
    RunTrigger,
    Secret,
    TargetSelector,
    TaskStatus,
)
from scheduler.history import HistoryStore
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.runner import SKIPPED_AFTER_FAILURE, Runner
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from tests.fault_proxy import KINSTA_500, KINSTA_503, NGINX_502, FaultProxy

FAST = Polling(first_poll_s=0.03, max_interval_s=0.1, not_found_grace_s=5, deadline_s=10)


def job(
    *actions: str, sites: tuple[str, ...] = ("*",), environment: str = "live", **kwargs: object
) -> Job:
    return Job(
        id="test-job",
        schedule=None,
        targets=TargetSelector(sites=sites, environment=environment),
        actions=tuple(ActionSpec(a) for a in actions),
        **kwargs,  # type: ignore[arg-type]
    )


def quicker(sandbox: SandboxServer) -> None:
    """Operations a quarter as long as the suite's sandbox makes them (a PHP restart 0.1 s
    instead of 0.4 s): for tests of what a run records, not of how long it waits."""
    sandbox.sandbox.fleet.time_scale = 0.005


@pytest.fixture
def make_runner(sandbox: SandboxServer, store: HistoryStore) -> Iterator[Callable[..., Runner]]:
    clients: list[KinstaClient] = []

    def make(
        cancel: CancelScope | None = None, polling: Polling = FAST, lock_lease_s: float = 120
    ) -> Runner:
        clock = SystemClock()
        client = KinstaClient(
            sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
        )
        clients.append(client)
        company = sandbox.sandbox.fleet.company_id
        return Runner(
            client,
            store,
            clock,
            polling,
            company,
            started_by="test",
            cancel=cancel,
            lock_lease_s=lock_lease_s,
        )

    yield make
    for client in clients:
        client.close()


def test_clear_cache_over_every_live_environment(
    make_runner: Callable[..., Runner], store: HistoryStore, sandbox: SandboxServer
) -> None:
    run = make_runner().run(job("clear_cache"), RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.SUCCEEDED
    tasks = store.tasks.run_tasks(run.run_id)
    assert len(tasks) == run.tasks_total == 6
    assert {t.status for t in tasks} == {TaskStatus.SUCCEEDED}
    assert all(
        t.operation_id
        and t.operation_id.startswith("cache:clear-")
        and t.operation_status == "succeeded"
        for t in tasks
    )
    assert all(t.operations[0].polls >= 1 for t in tasks)
    effects = sandbox.sandbox.fleet.counters()
    assert sum(c.get("cache:clear:done", 0) for c in effects.values()) == 6


def test_a_failed_action_stops_its_target_only(
    make_runner: Callable[..., Runner], store: HistoryStore, sandbox: SandboxServer
) -> None:
    quicker(sandbox)
    sandbox.sandbox.fleet.fail_next["php:restart"] = 1
    run = make_runner().run(
        job("restart_php", "clear_cache", concurrency=1), RunTrigger.MANUAL, datetime.now(UTC)
    )
    assert run is not None and run.status is RunStatus.FAILED and run.tasks_failed == 1
    tasks = store.tasks.run_tasks(run.run_id)
    assert [t.status for t in tasks[:2]] == [TaskStatus.FAILED, TaskStatus.SKIPPED]
    assert tasks[0].message == "operation failed: Error occurred while processing your request"
    assert tasks[1].message == SKIPPED_AFTER_FAILURE
    assert {t.status for t in tasks[2:]} == {TaskStatus.SUCCEEDED}


def test_on_failure_continue_runs_the_rest(
    make_runner: Callable[..., Runner], store: HistoryStore, sandbox: SandboxServer
) -> None:
    quicker(sandbox)
    sandbox.sandbox.fleet.fail_next["php:restart"] = 1
    run = make_runner().run(
        job("restart_php", "clear_cache", concurrency=1, on_failure="continue"),
        RunTrigger.MANUAL,
        datetime.now(UTC),
    )
    assert run is not None
    assert [t.status for t in store.tasks.run_tasks(run.run_id)[:2]] == [
        TaskStatus.FAILED,
        TaskStatus.SUCCEEDED,
    ]


def test_no_matching_target_is_a_skipped_run(make_runner: Callable[..., Runner]) -> None:
    run = make_runner().run(
        job("clear_cache", sites=("no-such-*",)), RunTrigger.MANUAL, datetime.now(UTC)
    )
    assert (
        run is not None
        and run.status is RunStatus.SKIPPED
        and run.error == "no environment matched the job's targets"
    )


def test_a_slot_runs_once(make_runner: Callable[..., Runner]) -> None:
    slot = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)
    runner = make_runner()
    assert runner.run(job("clear_cache", sites=("nope",)), RunTrigger.SCHEDULE, slot) is not None
    assert runner.run(job("clear_cache", sites=("nope",)), RunTrigger.SCHEDULE, slot) is None


def test_cancel_leaves_an_interrupted_run(
    make_runner: Callable[..., Runner], store: HistoryStore
) -> None:
    cancel = CancelScope()
    cancel.set()
    run = make_runner(cancel).run(job("clear_cache"), RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.INTERRUPTED
    assert {t.status for t in store.tasks.run_tasks(run.run_id)} == {TaskStatus.INTERRUPTED}
    assert run.error == "stopped early: the process was stopping: 6 task(s) not started"


def test_polls_learn_each_actions_typical_duration(
    make_runner: Callable[..., Runner], store: HistoryStore
) -> None:
    runner = make_runner()
    first = runner.run(job("clear_cache"), RunTrigger.MANUAL, datetime.now(UTC))
    assert first is not None
    learned = store.queries.typical_durations(["clear_cache"])
    assert (
        0.05 < learned["clear_cache"] < 1.0
    )  # 10 s (5 to 30 s) at time_scale 0.02 = 0.1 to 0.6 s, plus the 404 window
    second = runner.run(job("clear_cache"), RunTrigger.MANUAL, datetime.now(UTC))
    assert second is not None
    polls = [op.polls for t in store.tasks.run_tasks(second.run_id) for op in t.operations]
    assert sum(polls) / len(polls) <= 1.5  # mostly one poll, near the expected end


def php_job(version: str) -> Job:
    return Job(
        "php",
        None,
        TargetSelector(sites=("*",)),
        (CATALOGUE.step("set_php_version", version=version),),
    )


def test_set_php_version_then_skip_when_already_there(
    make_runner: Callable[..., Runner], store: HistoryStore, sandbox: SandboxServer
) -> None:
    quicker(sandbox)
    run = make_runner().run(php_job("8.4"), RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.SUCCEEDED
    assert {
        e.php_version
        for s in sandbox.sandbox.fleet.sites
        for e in s.environments
        if e.name == "live"
    } == {"8.4"}
    again = make_runner().run(php_job("8.4"), RunTrigger.MANUAL, datetime.now(UTC))
    assert again is not None and again.status is RunStatus.SUCCEEDED
    assert {t.status for t in store.tasks.run_tasks(again.run_id)} == {TaskStatus.SKIPPED}


@pytest.fixture
def slow_client_runner(sandbox: SandboxServer, store: HistoryStore) -> Iterator[Runner]:
    """A client that gives up after 0.3 s, so a hanging answer is lost after the request arrived."""
    clock = SystemClock()
    client = KinstaClient(
        sandbox.url,
        Secret(DEFAULT_API_KEY),
        RateGovernor(RateLimits(), clock),
        clock,
        timeout_s=0.3,
    )
    yield Runner(client, store, clock, FAST, sandbox.sandbox.fleet.company_id, started_by="test")
    client.close()


def test_a_lost_answer_is_reconciled_by_reading_state_back(
    slow_client_runner: Runner, store: HistoryStore, sandbox: SandboxServer
) -> None:
    sandbox.sandbox.faults.only, sandbox.sandbox.faults.hang, sandbox.sandbox.faults.hang_s = (
        "PUT",
        1.0,
        1.0,
    )
    job = Job(
        "php",
        None,
        TargetSelector(sites=(sandbox.sandbox.fleet.sites[0].name,)),
        (CATALOGUE.step("set_php_version", version="8.4"),),
    )
    run = slow_client_runner.run(job, RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.SUCCEEDED
    (task,) = store.tasks.run_tasks(run.run_id)
    assert task.message is not None and "reading back shows PHP 8.4 in place" in task.message
    env = sandbox.sandbox.fleet.sites[0].environments[0]
    assert env.counters["php:modify-version:accepted"] == 1  # sent once, never repeated


def test_an_uncertain_request_without_readable_state_is_not_repeated(
    slow_client_runner: Runner, store: HistoryStore, sandbox: SandboxServer
) -> None:
    """Issue 11 item 17: restart_php's answer lost after it reached Kinsta: PHP is not restarted
    a second time (it used to be, as an 'idempotent' action), and the task says why."""
    sandbox.sandbox.faults.only, sandbox.sandbox.faults.hang, sandbox.sandbox.faults.hang_s = (
        "POST",
        1.0,
        1.0,
    )
    slow_client_runner.retry_pause_s = 0.01
    job = Job(
        "php",
        None,
        TargetSelector(sites=(sandbox.sandbox.fleet.sites[0].name,)),
        (ActionSpec("restart_php"),),
    )
    run = slow_client_runner.run(job, RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.FAILED
    (task,) = store.tasks.run_tasks(run.run_id)
    assert task.message is not None and task.message.startswith(
        "uncertain: the request may have reached Kinsta"
    )
    assert task.attempts <= 1 and task.result is not None and "uncertain" in task.result
    counters = sandbox.sandbox.fleet.sites[0].environments[0].counters
    assert counters["php:restart:accepted"] == 1


def test_an_idempotent_action_is_tried_again_after_a_lost_answer(
    slow_client_runner: Runner, store: HistoryStore, sandbox: SandboxServer
) -> None:
    faults = sandbox.sandbox.faults
    faults.only, faults.hang, faults.hang_s = "POST", 1.0, 1.0
    slow_client_runner.retry_pause_s = 0.01
    site = sandbox.sandbox.fleet.sites[0]
    job = Job("cc", None, TargetSelector(sites=(site.name,)), (ActionSpec("clear_cache"),))
    run = slow_client_runner.run(job, RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.FAILED
    (task,) = store.tasks.run_tasks(run.run_id)
    assert task.attempts == 4 and task.message is not None and "(after 4 attempts)" in task.message
    assert site.environments[0].counters["cache:clear:accepted"] == 4  # harmless to repeat
    faults.hang = 0.0
    again = slow_client_runner.run(job, RunTrigger.MANUAL, datetime.now(UTC))
    assert again is not None and again.status is RunStatus.SUCCEEDED


def test_the_sandbox_counts_overlapping_mutations(
    make_runner: Callable[..., Runner], sandbox: SandboxServer
) -> None:
    """The control for the exclusion tests: two mutations at once on one environment count."""
    client = make_runner().client
    env = sandbox.sandbox.fleet.sites[0].environments[0]
    client.tools.clear_cache(env.id)
    client.tools.restart_php(env.id)
    assert sandbox.sandbox.fleet.overlaps == 1


def test_a_busy_environment_is_waited_for(
    make_runner: Callable[..., Runner], store: HistoryStore, sandbox: SandboxServer
) -> None:
    site = sandbox.sandbox.fleet.sites[1]
    env = site.environments[0]
    now = datetime.now(UTC)
    assert (
        store.locks.try_lock_environment(env.id, "elsewhere", "job other, run 1", now, 0.6) is None
    )
    started = time.monotonic()
    run = make_runner().run(job("clear_cache", sites=(site.name,)), RunTrigger.MANUAL, now)
    assert run is not None and run.status is RunStatus.SUCCEEDED
    assert time.monotonic() - started >= 0.5  # it waited for the other holder's lease to lapse
    # and let go at the end: someone else may take it at once
    assert (
        store.locks.try_lock_environment(env.id, "next", "job next", datetime.now(UTC), 60) is None
    )


def test_an_environment_that_stays_busy_fails_the_task_only(
    make_runner: Callable[..., Runner], store: HistoryStore, sandbox: SandboxServer
) -> None:
    busy, free = sandbox.sandbox.fleet.sites[1], sandbox.sandbox.fleet.sites[3]
    now = datetime.now(UTC)
    store.locks.try_lock_environment(
        busy.environments[0].id, "elsewhere", "job other, run 1", now, 600
    )
    short = Polling(first_poll_s=0.03, max_interval_s=0.1, not_found_grace_s=5, deadline_s=0.5)
    run = make_runner(polling=short).run(
        job("clear_cache", "inventory", sites=(busy.name, free.name)), RunTrigger.MANUAL, now
    )
    assert run is not None and run.status is RunStatus.FAILED and run.tasks_failed == 1
    tasks = {(t.site, t.action): t for t in store.tasks.run_tasks(run.run_id)}
    stuck = tasks[(busy.name, "clear_cache")]
    assert stuck.status is TaskStatus.FAILED
    assert stuck.message is not None and "held by job other, run 1" in stuck.message
    assert tasks[(busy.name, "inventory")].status is TaskStatus.SKIPPED
    assert tasks[(free.name, "clear_cache")].status is TaskStatus.SUCCEEDED


def test_verification_reads_the_sites_over_http(
    make_runner: Callable[..., Runner], sandbox: SandboxServer
) -> None:
    from scheduler.actions.verify import VerifyOptions, check
    from scheduler.kinsta.probe import SiteProbe
    from scheduler.targets import select_targets

    runner = make_runner()
    runner.probe = SiteProbe(5, via=sandbox.url.removesuffix("/v2"))
    fleet = sandbox.sandbox.fleet
    site = fleet.sites[0]
    target = select_targets(
        runner.client.sites.list(fleet.company_id, include_environments=True),
        TargetSelector(sites=(site.name,)),
    )[0]

    class Ctx:
        client = runner.client
        probe = runner.probe

    ctx: Any = Ctx()
    healthy = check(ctx, target, VerifyOptions(paths=("/", "/shop/"), status=200), set())
    assert healthy.ok and [p["status"] for p in healthy.pages] == [200, 200]
    assert not check(ctx, target, VerifyOptions(contains="no such marker"), None).ok
    site.environments[0].broken = "blank"
    blank = check(ctx, target, VerifyOptions(), None)
    assert not blank.ok and "blank page" in blank.summary()
    site.environments[0].broken = "fatal"
    fatal = check(ctx, target, VerifyOptions(), None)
    assert "answered 500, expected 200" in fatal.summary()
    runner.probe.close()


# --- answers that prove nothing: a 500 on a poll, a 5xx to a change (issue 11 items 15-17) -----


@pytest.fixture
def proxy(sandbox: SandboxServer) -> Iterator[FaultProxy]:
    """The sandbox behind a proxy that can answer for it."""
    found = FaultProxy(sandbox.url)
    yield found
    found.close()


@pytest.fixture
def proxied_runner(
    proxy: FaultProxy, sandbox: SandboxServer, store: HistoryStore
) -> Iterator[Runner]:
    clock = SystemClock()
    client = KinstaClient(
        proxy.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
    )
    polling = replace(FAST, read_back_s=5.0)  # reading back outlasts a sandbox backup
    runner = Runner(client, store, clock, polling, sandbox.sandbox.fleet.company_id, started_by="t")
    runner.retry_pause_s = 0.01
    yield runner
    client.close()


def one_site(sandbox: SandboxServer, *actions: str | ActionSpec) -> Job:
    site = sandbox.sandbox.fleet.sites[0]
    specs = tuple(a if isinstance(a, ActionSpec) else ActionSpec(a) for a in actions)
    return Job("one", None, TargetSelector(sites=(site.name,)), specs)


def test_a_transient_500_on_a_poll_is_not_taken_for_a_failure(
    proxied_runner: Runner, proxy: FaultProxy, store: HistoryStore, sandbox: SandboxServer
) -> None:
    """Kinsta's failed-operation answer is also what a hiccup looks like: it is confirmed by
    further polls, and the operation's real end (here success) is what counts."""
    proxy.add("GET", r"/v2/operations/.+", 500, KINSTA_500, forward=True)
    run = proxied_runner.run(one_site(sandbox, "restart_php"), RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.SUCCEEDED
    ((task,),) = [store.tasks.run_tasks(run.run_id)]
    (operation,) = task.operations
    assert operation.state.value == "succeeded"
    unconfirmed = [e for e in operation.events if e.http_status == 500]
    assert len(unconfirmed) == 1 and unconfirmed[0].message is not None
    assert unconfirmed[0].message.startswith("not final until confirmed (1 of 3): Error occurred")
    assert ("GET", 500) in [(m, status) for m, _, status in proxy.requests]


def test_an_error_page_on_a_poll_is_a_failed_poll_not_an_answer(
    proxied_runner: Runner, proxy: FaultProxy, store: HistoryStore, sandbox: SandboxServer
) -> None:
    """A 500 that is not Kinsta's JSON (a proxy's page) says nothing about the operation: it is
    recorded as a failed poll with its status, and polling goes on."""
    page = NGINX_502.replace("502 Bad Gateway", "500 Internal Server Error")
    proxy.add("GET", r"/v2/operations/.+", 500, page, forward=True)
    run = proxied_runner.run(one_site(sandbox, "clear_cache"), RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.SUCCEEDED
    ((task,),) = [store.tasks.run_tasks(run.run_id)]
    (operation,) = task.operations
    failed_polls = [e for e in operation.events if e.http_status == 500]
    assert len(failed_polls) == 1 and failed_polls[0].message is not None
    assert failed_polls[0].message.startswith("poll failed: ")
    assert "Internal Server Error" in failed_polls[0].message
    assert "<" not in failed_polls[0].message


def test_edge_and_cdn_clears_skip_an_environment_without_that_cache(
    make_runner: Callable[..., Runner], store: HistoryStore, sandbox: SandboxServer
) -> None:
    """Issue 11 item 23: clear_edge_cache, like clear_cdn_cache, is skipped (not sent) where the
    environment has no cache of that kind; the others are cleared."""
    quicker(sandbox)
    fleet = sandbox.sandbox.fleet
    bare = fleet.sites[0].environments[0]
    bare.edge_cache_id = None  # Kinsta answers id_edge_cache: null
    bare.cdn_cache_id = None
    run = make_runner().run(
        job("clear_edge_cache", "clear_cdn_cache"), RunTrigger.MANUAL, datetime.now(UTC)
    )
    assert run is not None and run.status is RunStatus.SUCCEEDED
    by_env = {(t.environment_id, t.action): t for t in store.tasks.run_tasks(run.run_id)}
    for action, why in (("clear_edge_cache", "edge cache"), ("clear_cdn_cache", "CDN cache")):
        skipped = by_env[(bare.id, action)]
        assert skipped.status is TaskStatus.SKIPPED and why in (skipped.message or "")
    assert bare.counters["edgeCache:clear:accepted"] == 0
    # Every other environment is cleared where it has that cache (the sandbox generates some
    # without either), and skipped where it has not.
    has: dict[str | None, dict[str, bool]] = {
        env.id: {
            "clear_edge_cache": bool(env.edge_cache_id),
            "clear_cdn_cache": bool(env.cdn_cache_id),
        }
        for site in fleet.sites
        for env in site.environments
    }
    others = [(env, action, t) for (env, action), t in by_env.items() if env != bare.id]
    assert any(has[env][action] for env, action, _ in others)
    for env, action, task in others:
        expected = TaskStatus.SUCCEEDED if has[env][action] else TaskStatus.SKIPPED
        assert task.status is expected, task


def env_of(sandbox: SandboxServer) -> Any:
    return sandbox.sandbox.fleet.sites[0].environments[0]


def test_a_change_answered_502_is_uncertain_and_read_back(
    proxied_runner: Runner, proxy: FaultProxy, store: HistoryStore, sandbox: SandboxServer
) -> None:
    """Issue 11 item 16: a proxy's 502 after the backup request reached Kinsta does not prove it
    failed. It is not sent again; the backup list is read back, and shows the backup."""
    proxy.add("POST", r"/v2/sites/environments/[^/]+/manual-backups", 502, NGINX_502, forward=True)
    run = proxied_runner.run(one_site(sandbox, "backup"), RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.SUCCEEDED
    (task,) = store.tasks.run_tasks(run.run_id)
    assert task.message is not None and "reading back shows a new manual backup" in task.message
    assert "HTTP 502: Bad Gateway" in task.message
    assert task.result == {"tag": "kinsta-scheduler", "reconciled": True}
    assert env_of(sandbox).counters["backups:add-manual:accepted"] == 1


def test_an_earlier_backup_with_the_same_tag_is_no_proof_of_an_uncertain_one(
    proxied_runner: Runner, proxy: FaultProxy, store: HistoryStore, sandbox: SandboxServer
) -> None:
    """A backup request answered 502 that never reached Kinsta must not be taken for done
    because a backup with the same tag was made minutes before (a safe update would then
    restore that older backup)."""
    quicker(sandbox)  # the earlier backup: 0.6 s instead of 2.4 s
    # Nothing reached Kinsta, so nothing new can show up: a second of reading back (after its
    # first look, which finds the earlier backup) says as much as five.
    proxied_runner.polling = replace(proxied_runner.polling, read_back_s=1.0)
    find = CATALOGUE.step("backup", find_id=True)
    first = proxied_runner.run(one_site(sandbox, find), RunTrigger.MANUAL, datetime.now(UTC))
    assert first is not None and first.status is RunStatus.SUCCEEDED
    proxy.add("POST", r"/v2/sites/environments/[^/]+/manual-backups", 502, NGINX_502, forward=False)
    again = proxied_runner.run(
        one_site(sandbox, find), RunTrigger.MANUAL, datetime.now(UTC) + timedelta(seconds=1)
    )
    assert again is not None and again.status is RunStatus.FAILED
    (task,) = store.tasks.run_tasks(again.run_id)
    assert task.message is not None and task.message.startswith("uncertain")
    assert env_of(sandbox).counters["backups:add-manual:accepted"] == 1


def test_an_update_answered_504_is_read_back_not_repeated(
    proxied_runner: Runner, proxy: FaultProxy, store: HistoryStore, sandbox: SandboxServer
) -> None:
    env = env_of(sandbox)
    outdated = {n for n, item in env.plugins.items() if item.version != item.latest}
    assert outdated  # the seeded fleet has updates on offer here
    page = NGINX_502.replace("502 Bad Gateway", "504 Gateway Time-out")
    proxy.add("PUT", r"/v2/sites/environments/[^/]+/plugins/bulk-update", 504, page, forward=True)
    run = proxied_runner.run(
        one_site(sandbox, "update_plugins"), RunTrigger.MANUAL, datetime.now(UTC)
    )
    assert run is not None and run.status is RunStatus.SUCCEEDED
    (task,) = store.tasks.run_tasks(run.run_id)
    assert task.result is not None and task.result["reconciled"] is True
    assert set(task.result["updated"]) == outdated
    assert task.versions_after == {"plugins": {n: env.plugins[n].version for n in outdated}}
    assert env.counters["wp-plugins:bulk-update:accepted"] == 1


def test_a_change_that_may_have_acted_and_cannot_be_read_back_stays_uncertain(
    proxied_runner: Runner, proxy: FaultProxy, store: HistoryStore, sandbox: SandboxServer
) -> None:
    """Issue 11 items 16-17: restart_php answered 503 after reaching Kinsta is recorded as
    uncertain and never sent again (PHP is not restarted twice)."""
    proxy.add("POST", r"/v2/sites/tools/restart-php", 503, KINSTA_503, forward=True)
    run = proxied_runner.run(one_site(sandbox, "restart_php"), RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.FAILED
    (task,) = store.tasks.run_tasks(run.run_id)
    assert task.message == (
        "uncertain: the request may have reached Kinsta (POST /sites/tools/restart-php: HTTP 503: "
        "Service Unavailable), but its effect cannot be read back; not repeated"
    )
    assert env_of(sandbox).counters["php:restart:accepted"] == 1
    assert [m for m, path, _ in proxy.requests if path.endswith("restart-php")] == ["POST"]


def test_a_cache_clear_is_safe_to_repeat_after_an_uncertain_answer(
    proxied_runner: Runner, proxy: FaultProxy, store: HistoryStore, sandbox: SandboxServer
) -> None:
    """The other side of item 17's decision: clearing a cache twice does no harm, so a cache
    clear whose answer proves nothing is simply sent again."""
    proxy.add("POST", r"/v2/sites/tools/clear-cache", 502, NGINX_502, forward=True)
    run = proxied_runner.run(one_site(sandbox, "clear_cache"), RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.SUCCEEDED
    assert env_of(sandbox).counters["cache:clear:accepted"] == 2


def test_a_change_refused_with_a_4xx_is_a_plain_failure(
    proxied_runner: Runner, proxy: FaultProxy, store: HistoryStore, sandbox: SandboxServer
) -> None:
    """A 4xx proves the request was refused: nothing is uncertain and nothing is read back."""
    refused = '{"message": "Invalid environment", "status": 400}'
    proxy.add("POST", r"/v2/sites/environments/[^/]+/manual-backups", 400, refused, forward=False)
    run = proxied_runner.run(one_site(sandbox, "backup"), RunTrigger.MANUAL, datetime.now(UTC))
    assert run is not None and run.status is RunStatus.FAILED
    (task,) = store.tasks.run_tasks(run.run_id)
    assert task.message == (
        "POST /sites/environments/" + env_of(sandbox).id + "/manual-backups: HTTP 400: "
        "Invalid environment"
    )
    assert not task.result and env_of(sandbox).counters["backups:add-manual:accepted"] == 0


def test_reading_back_gives_up_after_the_read_back_window(
    proxied_runner: Runner, proxy: FaultProxy, store: HistoryStore, sandbox: SandboxServer
) -> None:
    """A 503 that did not act (the usual case) costs the read-back window (ten polls at
    max_interval by default), not the whole polling deadline; the task stays uncertain."""
    assert FAST.read_back_window_s == 1.0 and FAST.deadline_s == 10
    proxied_runner.polling = FAST
    proxy.add(
        "POST", r"/v2/sites/environments/[^/]+/manual-backups", 503, KINSTA_503, forward=False
    )
    started = time.monotonic()
    run = proxied_runner.run(one_site(sandbox, "backup"), RunTrigger.MANUAL, datetime.now(UTC))
    assert time.monotonic() - started < 5
    assert run is not None and run.status is RunStatus.FAILED
    (task,) = store.tasks.run_tasks(run.run_id)
    assert task.message is not None and task.message.startswith("uncertain: ")
    assert "reading back does not show a new manual backup" in task.message
    assert task.result is not None and task.result["reconciled"] is True
    assert env_of(sandbox).counters["backups:add-manual:accepted"] == 0  # and never sent again


def test_a_target_whose_environment_is_busy_goes_to_the_back_of_the_line(
    make_runner: Callable[..., Runner], store: HistoryStore, sandbox: SandboxServer
) -> None:
    """Its place in flight goes to a target that can work now; it runs once the holder lets
    go, instead of holding a thread while it waits."""
    first, second = sandbox.sandbox.fleet.sites[:2]
    busy = first.environments[0]
    taken = store.locks.try_lock_environment(
        busy.id, "elsewhere", "another job", datetime.now(UTC), 120
    )
    assert taken is None
    sites = (first.name, second.name)
    release = threading.Timer(1.0, lambda: store.locks.unlock_environment(busy.id, "elsewhere"))
    release.start()
    try:
        run = make_runner().run(
            job("clear_cache", sites=sites, concurrency=1), RunTrigger.MANUAL, datetime.now(UTC)
        )
    finally:
        release.cancel()
    assert run is not None and run.status is RunStatus.SUCCEEDED
    tasks = store.tasks.run_tasks(run.run_id)
    assert all(t.started_at is not None for t in tasks)
    tasks.sort(key=lambda t: t.started_at or datetime.min.replace(tzinfo=UTC))
    assert [t.site for t in tasks] == [second.name, first.name]
