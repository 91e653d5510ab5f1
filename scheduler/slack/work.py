"""What each command does. `prepare` does the quick part (reads history, finds the target in
the live site list) and returns the first answer; a changing command also returns what to do
next (`then`): the run, through the daemon as any run, with progress while it lasts and the
result at its end, each told to `post`.

A one-target run (clear-cache, restart-php) is an on-demand job named after its action and
target, `clear_cache@meadow-garden-1/live` (not a name jobs.yaml allows, so it collides with
none), pinned to the environment found when asked. `trigger JOB SITE` runs the job of
jobs.yaml, recorded under its own id, on that site's environments among the job's targets.
While a run of the same job (or the same one-target job) is going, the daemon refuses another:
a second click does not restart PHP twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import structlog

from scheduler import logs
from scheduler.actions import Scope, registry
from scheduler.clock import Clock
from scheduler.domain import ActionSpec, Config, Job, Run, RunTrigger, Target, TargetSelector
from scheduler.errors import RunRefused, SchedulerError
from scheduler.history import HistoryStore
from scheduler.ports import RunFilter, TaskFilter
from scheduler.runner import OnDemand, Runner
from scheduler.slack import replies
from scheduler.slack.commands import DEFAULT_HISTORY, Command, Invocation, esc

log = structlog.get_logger("scheduler.slack")

PROGRESS_EVERY_S = 120.0  # a long run says where it is this often...
MAX_PROGRESS_POSTS = 3  # ...at most this often: Slack takes five messages per response_url
ONE_TARGET_ACTIONS = {"clear-cache": "clear_cache", "restart-php": "restart_php"}

Post = Callable[[str, bool], None]  # (text, in_channel): to the command's response_url


class Host(Protocol):
    """What the commands need of the daemon (scheduler.daemon.Daemon is one)."""

    @property
    def config(self) -> Config: ...

    def run_now(self, job: Job, trigger: RunTrigger, asked: OnDemand) -> Run: ...

    def runner_of(self, job: Job) -> Runner | None: ...


@dataclass(frozen=True)
class Prepared:
    text: str
    in_channel: bool = False  # shown to the channel (a change), not only to the one who asked
    then: Callable[[Post], None] | None = None


class Work:
    def __init__(
        self,
        host: Host,
        store: HistoryStore,
        clock: Clock,
        *,
        progress_every_s: float = PROGRESS_EVERY_S,
        max_progress_posts: int = MAX_PROGRESS_POSTS,
    ) -> None:
        self._host = host
        self._store = store
        self._clock = clock
        self._progress_every_s = progress_every_s
        self._max_progress_posts = max_progress_posts

    def prepare(self, command: Command, asked: Invocation) -> Prepared:
        name, site = command.name, command.arg(0) or ""
        if name == "status":
            return Prepared(self._status(site))
        if name == "history":
            return Prepared(self._history(site, int(command.arg(1, str(DEFAULT_HISTORY)) or 0)))
        if name == "next":
            config = self._host.config
            return Prepared(replies.upcoming(config.jobs, self._clock.now(), config.timezone))
        if name == "trigger":
            return self._trigger(site, command.arg(1), asked)
        return self._one_target(ONE_TARGET_ACTIONS[name], site, command.arg(1) or "live", asked)

    # --- reads ------------------------------------------------------------------------------

    def _status(self, site: str) -> str:
        inventory = self._store.catalogue.latest_inventory(site)
        actions = self._store.queries.site_actions(site)
        quarantined = {(e.kind, e.name, e.version): e for e in self._store.quarantine.entries()}
        live: list[Target] = []
        if not inventory:  # history has no versions of it: ask Kinsta's site list
            live = self._find(site, "all")[1]
            if not live and not actions:
                return f"No site named `{esc(site)}` in Kinsta's site list or in history."
        found = replies.SiteStatus(site, inventory, actions, quarantined, live)
        return replies.status(found)

    def _history(self, site: str, count: int) -> str:
        runs = self._store.queries.list_runs(RunFilter(site=site, limit=count))
        return replies.history(
            site,
            [
                (r, self._store.queries.list_tasks(TaskFilter(run_id=r.run_id, site=site)))
                for r in runs
            ],
        )

    # --- runs -------------------------------------------------------------------------------

    def _find(self, site: str, environment: str) -> tuple[str | None, list[Target]]:
        """(company, the site's environments that `environment` names) from the live site
        list of each company, the first company that has the site."""
        for company in self._host.config.kinsta.all_companies():
            probe = _one_target_job("clear_cache", site, environment, company.name)
            runner = self._host.runner_of(probe)
            targets = runner.targets(probe) if runner is not None else []
            if targets:
                return company.name, targets
        return None, []

    def _one_target(self, action: str, site: str, env: str, asked: Invocation) -> Prepared:
        company, targets = self._find(site, env)
        if len(targets) != 1:
            return Prepared(self._not_one(site, env, targets))
        target = targets[0]
        assert company is not None
        job = replace(
            _one_target_job(action, site, target.environment_name, company),
            id=f"{action}@{target.key}",
        )
        what = f"{action} on {esc(target.key)}"
        verb = {"clear_cache": "clear the cache of", "restart_php": "restart PHP on"}[action]
        text = replies.accepted(f"{verb} {esc(target.key)}", asked.user_id)
        return Prepared(text, True, self._run_later(job, (target,), asked, what))

    def _not_one(self, site: str, env: str, targets: Sequence[Target]) -> str:
        if targets:
            names = ", ".join(esc(t.environment_name) for t in targets)
            many = f"{len(targets)} environments of {esc(site)} ({names})"
            return f"`{esc(env)}` names {many}: name one."
        others = self._find(site, "all")[1]
        if not others:
            return f"No site named `{esc(site)}` in Kinsta's site list."
        names = ", ".join(esc(t.environment_name) for t in others)
        return f"{esc(site)} has no environment `{esc(env)}` (it has {names})."

    def _trigger(self, job_id: str, site: str | None, asked: Invocation) -> Prepared:
        job = self._host.config.job(job_id)
        if job is None:
            return Prepared(f"No job `{esc(job_id)}` in jobs.yaml.")
        runner = self._host.runner_of(job)
        if runner is None:
            return Prepared(f"Job `{esc(job_id)}` names a company the daemon has no client for.")
        company_wide = all(registry()[a.name].scope is Scope.COMPANY for a in job.actions)
        if site is not None and company_wide:
            return Prepared(
                f"Job `{esc(job_id)}` acts on the company, not on a site: leave SITE out."
            )
        targets = runner.targets(job)
        if site is not None:
            targets = [t for t in targets if t.site_name == site]
        if not targets:
            where = f" on {esc(site)}" if site else ""
            return Prepared(f"Job `{esc(job_id)}` has no target{where} now: nothing to run.")
        what = f"{esc(job.id)}" + (f" on {esc(site)}" if site else "")
        text = replies.accepted(f"run {what} ({len(targets)} target(s))", asked.user_id)
        pinned = tuple(targets) if site is not None else None
        return Prepared(text, True, self._run_later(job, pinned, asked, what))

    def _run_later(
        self, job: Job, targets: Sequence[Target] | None, asked: Invocation, what: str
    ) -> Callable[[Post], None]:
        def run(post: Post) -> None:
            ticker = _Ticker(
                self._store, post, what, self._progress_every_s, self._max_progress_posts
            )
            on_demand = OnDemand(asked.requested_by, targets, ticker.start)
            log.info("slack.run_asked", job_id=job.id, by=asked.requested_by)
            try:
                run = self._host.run_now(job, RunTrigger.SLACK, on_demand)
            except RunRefused as exc:
                post(f"Not started ({what}): {esc(str(exc))}.", True)
                return
            except SchedulerError as exc:
                log.error("slack.run_failed", job_id=job.id, error=str(exc))
                post(f"Could not run {what}: {esc(logs.mask(str(exc)))}", True)
                return
            finally:
                ticker.stop()
            try:
                tasks = self._store.tasks.run_tasks(run.run_id)
            except SchedulerError:  # the run is recorded: say how it ended without its tasks
                tasks = []
            post(replies.result(run, what, tasks), True)

        return run


def _one_target_job(action: str, site: str, environment: str, company: str) -> Job:
    """A job of one action on the site's environments that `environment` names."""
    selector = TargetSelector(sites=(site,), environment=environment)
    return Job(action, None, selector, (ActionSpec(action),), company=company)


class _Ticker:
    """While a run lasts, every `every_s` (at most `max_posts` times): where it is."""

    def __init__(self, store: HistoryStore, post: Post, what: str, every_s: float, max_posts: int):
        self._store, self._post, self._what = store, post, what
        self._every_s, self._max_posts = every_s, max_posts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, run: Run) -> None:
        self._thread = threading.Thread(target=self._tick, args=(run,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()  # its last post lands before the result

    def _tick(self, run: Run) -> None:
        started = time.monotonic()
        for _ in range(self._max_posts):
            if self._stop.wait(self._every_s):
                return
            try:
                tasks = self._store.tasks.run_tasks(run.run_id)
                self._post(
                    replies.progress(run, self._what, tasks, time.monotonic() - started), True
                )
            except Exception:  # a progress report that fails must not touch the run
                log.exception("slack.progress_failed", run_id=run.run_id)
