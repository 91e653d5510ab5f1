"""plan's arithmetic: requests, rate budget, likely run length, colliding schedules, and DST
marks; validate's target warnings."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from scheduler import planning, schedules
from scheduler.actions import Cost, registry
from scheduler.actions.backups import BackupOptions
from scheduler.actions.catalogue import CATALOGUE
from scheduler.actions.updates import UpdateOptions
from scheduler.domain import (
    ActionSpec,
    CronSchedule,
    IntervalSchedule,
    Job,
    RateLimits,
    Run,
    RunStatus,
    RunTrigger,
    Schedule,
    TargetSelector,
)

ACTIONS = registry()
T0 = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


_SITE = {
    "display_name": "Shop",
    "region": "us-central1",
    "admin_email": "a@example.com",
    "admin_user": "admin",
    "admin_password": "long enough",
}


def job(
    job_id: str,
    *actions: str,
    sites: tuple[str, ...] = ("*",),
    concurrency: int | None = None,
    **kw: object,
) -> Job:
    return Job(
        id=job_id,
        schedule=None,
        targets=TargetSelector(sites=sites, **kw),  # type: ignore[arg-type]
        actions=tuple(ActionSpec(a) for a in actions),
        concurrency=concurrency,
    )


LIMITS = RateLimits(per_minute=120)
NO_HISTORY = planning.Learned()
PRIOR = planning.POLLS_PER_OPERATION


def test_estimate_counts_requests_budget_and_waves() -> None:
    """Per target: each action's calls and reads, and its operations' expected polls; the rate
    floor is what the limit needs beyond its first window; `concurrency: N` runs in waves."""
    nightly = job("n", "backup", "clear_cache", concurrency=4)  # 1 call + 1 operation each
    guess = planning.estimate(nightly, 300, ACTIONS, LIMITS, NO_HISTORY)
    assert guess.requests == 1 + math.ceil(300 * 2 * (1 + PRIOR))
    assert guess.operations == 600
    assert guess.governor_s == (guess.requests - 120) / 120 * 60
    assert guess.chain_s == ACTIONS["backup"].typical_s + ACTIONS["clear_cache"].typical_s
    assert guess.duration_s == max(guess.governor_s, 75 * guess.chain_s)
    assert guess.shared_requests == guess.requests and guess.shared_with == ()
    learned = planning.Learned({"backup": 10.0, "clear_cache": 2.0}, {})
    few = planning.estimate(nightly, 4, ACTIONS, LIMITS, learned)
    assert few.chain_s == 12.0 and few.governor_s == 0.0 and few.duration_s == 12.0
    unknown = planning.estimate(nightly, None, ACTIONS, LIMITS, NO_HISTORY)
    assert unknown.requests is None and unknown.duration_s is None
    none = planning.estimate(nightly, 0, ACTIONS, LIMITS, NO_HISTORY)
    assert none.requests == 1 and none.duration_s == 0.0


def test_polls_come_from_history_when_it_knows_the_action() -> None:
    nightly = job("n", "backup", "update_plugins", "clear_cache")
    cold = planning.estimate(nightly, 100, ACTIONS, LIMITS, NO_HISTORY)
    # backup 1 call, update_plugins its plugin list and the bulk call, clear_cache 1 call.
    assert cold.requests == 1 + math.ceil(100 * (4 + 3 * PRIOR))
    warm = planning.Learned(polls={"backup": 1.5, "update_plugins": 1.0})
    guess = planning.estimate(nightly, 100, ACTIONS, LIMITS, warm)
    assert guess.requests == 1 + math.ceil(100 * (4 + 1.5 + 1.0 + PRIOR))
    assert guess.operations == 300


def test_an_actions_requests_follow_its_options() -> None:
    """Reads that an option adds are counted: backup's find_id lists the backups before and
    after; a safe update takes a backup, reads the versions back and the error log twice."""
    backup, update = CATALOGUE["backup"], CATALOGUE["update_plugins"]
    assert backup.cost() == Cost(1.0, 1.0)
    assert backup.cost(BackupOptions(find_id=True)) == Cost(3.0, 1.0)
    assert update.cost() == Cost(2.0, 1.0)
    assert update.cost(UpdateOptions(safe=True)) == Cost(8.0, 2.0)
    assert update.cost(UpdateOptions(safe=True, check_php_errors=False)) == Cost(6.0, 2.0)
    assert CATALOGUE["inventory"].cost() == Cost(4.0, 0.0)
    finding = replace(job("f", "backup"), actions=(CATALOGUE.step("backup", find_id=True),))
    learned = planning.Learned(polls={"backup": 1.0})
    assert planning.estimate(finding, 10, ACTIONS, LIMITS, learned).requests == 1 + 10 * 4
    site = replace(job("s", "create_site"), actions=(CATALOGUE.step("create_site", **_SITE),))
    made = planning.estimate(site, 1, ACTIONS, LIMITS, learned)
    assert made.requests == math.ceil(3 + PRIOR)  # no site listing for a company's action


def test_auto_is_the_rate_floor_and_a_tail_or_one_chain() -> None:
    """`concurrency: auto` (the default): rate-bound, so the floor plus about half a chain (the
    last targets' operations); a small run lasts one chain. A cap never makes it faster."""
    learned = planning.Learned({"backup": 60.0, "clear_cache": 10.0}, {"backup": 1.0})
    nightly = job("n", "backup", "clear_cache")
    big = planning.estimate(nightly, 300, ACTIONS, LIMITS, learned)
    assert big.governor_s is not None and big.governor_s > 70.0
    assert big.duration_s == pytest.approx(big.governor_s + planning.TAIL_SHARE * 70.0)
    small = planning.estimate(nightly, 5, ACTIONS, LIMITS, learned)
    assert small.duration_s == 70.0
    capped = planning.estimate(replace(nightly, concurrency=64), 300, ACTIONS, LIMITS, learned)
    assert capped.duration_s == big.duration_s  # 5 waves of 70 s are shorter than the floor
    slow = planning.estimate(replace(nightly, concurrency=4), 300, ACTIONS, LIMITS, learned)
    assert slow.duration_s == 75 * 70.0


def test_the_rate_floor_follows_the_keys_window() -> None:
    """jobs.yaml may scale Kinsta's window (as the benchmarks do): the floor scales with it."""
    nightly = job("n", "backup", "clear_cache")
    minute = planning.estimate(nightly, 300, ACTIONS, LIMITS, NO_HISTORY)
    scaled = RateLimits(per_minute=120, window_s=6.0)
    tenth = planning.estimate(nightly, 300, ACTIONS, scaled, NO_HISTORY)
    assert minute.governor_s is not None and tenth.governor_s is not None
    assert tenth.governor_s == pytest.approx(minute.governor_s / 10)
    assert planning.rate_floor_s(1200, RateLimits(per_minute=60, window_s=30.0)) == 570.0
    assert planning.rate_floor_s(100, LIMITS) == 0.0


def test_runs_due_in_the_same_minute_share_the_keys_budget() -> None:
    """Runs that start together on one company interleave their requests: each waits behind
    its own and, of each other's, as many as it sends itself. Other companies, other minutes
    and unscheduled jobs do not count; a weekly job meets a nightly one on its day only."""
    nightly = scheduled("night", CronSchedule("0 3 * * *", "UTC"), "backup", "clear_cache")
    cache = scheduled("cache", CronSchedule("0 3 * * *", "UTC"), "clear_cache")
    later = scheduled("later", CronSchedule("30 3 * * *", "UTC"), "clear_cache")
    elsewhere = replace(cache, id="elsewhere", company="other")
    weekly = scheduled("weekly", CronSchedule("0 3 * * 0", "Europe/London"), "inventory")
    manual = replace(cache, id="manual", schedule=None)
    # A monthly job's cycle (a year) is longer than the nightly ones' (a week): on its day it
    # meets `later`, weeks from now, and both hear of it.
    monthly = scheduled("monthly", CronSchedule("30 3 15 * *", "UTC"), "inventory")
    jobs = [nightly, cache, later, elsewhere, weekly, manual, monthly]
    requests = {"night": 1000, "cache": 400, "later": 400, "elsewhere": 400, "weekly": 200}
    met = planning.starting_together(jobs, {**requests, "manual": 400, "monthly": 50}, T0)
    assert met == {
        "night": [("cache", 400), ("weekly", 200)],
        "cache": [("night", 1000), ("weekly", 200)],
        "weekly": [("cache", 400), ("night", 1000)],
        "monthly": [("later", 400)],
        "later": [("monthly", 50)],
    }
    alone = planning.estimate(nightly, 300, ACTIONS, LIMITS, NO_HISTORY)
    assert alone.requests is not None and alone.duration_s is not None
    shared = planning.estimate(nightly, 300, ACTIONS, LIMITS, NO_HISTORY, together=[("cache", 400)])
    assert shared.requests == alone.requests and shared.governor_s == alone.governor_s
    assert shared.shared_requests == alone.requests + 400 and shared.shared_with == ("cache",)
    assert shared.duration_s == pytest.approx(alone.duration_s + 400 / 120 * 60)
    small = planning.estimate(cache, 10, ACTIONS, LIMITS, NO_HISTORY, together=[("night", 5000)])
    assert small.requests is not None
    assert small.shared_requests == 2 * small.requests  # the big run's pace, not its total


def scheduled(job_id: str, schedule: Schedule, *actions: str) -> Job:
    return replace(job(job_id, *actions), schedule=schedule)


def test_warnings_for_long_runs_and_colliding_jobs() -> None:
    a = scheduled("a", IntervalSchedule(every_s=1800), "backup")  # 60 min runs every 30 min
    b = scheduled("b", CronSchedule("10 2 * * *", "UTC"), "clear_cache")
    c = scheduled("c", CronSchedule("0 7 * * *", "UTC"), "inventory")
    estimates = {
        "a": planning.Estimate("a", 10, 31, 0.0, 90.0, 3600.0),
        "b": planning.Estimate("b", 10, 21, 0.0, 5.0, 60.0),
        "c": planning.Estimate("c", 10, 41, 0.0, 2.0, 20.0),
    }
    shared = {("a", "b"): 10, ("b", "c"): 10}
    found = planning.warnings([a, b, c], estimates, T0, shared)
    assert [jobs for jobs, _ in found] == [("a",), ("a", "b")]
    texts = [text for _, text in found]
    assert texts[0].startswith("job a: a run needs about 60 min but slots are 30 min apart")
    assert "jobs a and b act on 10 shared environment(s)" in texts[1]
    assert "2026-11-29 02:10" in texts[1]


def test_a_weekly_collision_shows_on_every_day_of_the_week() -> None:
    """Regression (issue 11.1): the check looked only at the next --count fire times, so a
    Sunday job's collision with a nightly one vanished from Sunday 02:30 to Thursday 02:30."""
    weekly = scheduled("weekly", CronSchedule("30 2 * * 0", "Europe/Amsterdam"), "backup")
    nightly = scheduled("nightly", CronSchedule("30 2 * * *", "Europe/Amsterdam"), "clear_cache")
    estimates = {
        "weekly": planning.Estimate("weekly", 8, 57, 0.0, 105.0, 105.0),
        "nightly": planning.Estimate("nightly", 5, 11, 0.0, 5.0, 5.0),
    }
    monday = datetime(2026, 11, 23, tzinfo=UTC)
    for hours in range(0, 7 * 24, 5):  # every day of the week, at many hours
        now = monday + timedelta(hours=hours)
        found = planning.warnings([weekly, nightly], estimates, now, {("weekly", "nightly"): 5})
        assert [jobs for jobs, _ in found] == [("weekly", "nightly")], now
        sunday = now + timedelta(days=(6 - now.weekday()) % 7)
        assert f"{sunday:%Y-%m-%d} 01:30 UTC" in found[0][1] or (
            f"{sunday + timedelta(days=7):%Y-%m-%d} 01:30 UTC" in found[0][1]
        )


def test_collisions_are_looked_for_over_each_pairs_common_cycle() -> None:
    """A monthly job meets a weekly one only when the 1st is a Sunday: months ahead."""
    monthly = CronSchedule("0 3 1 * *", "UTC")
    sundays = CronSchedule("0 3 * * 0", "UTC")
    assert planning.horizon(monthly, sundays) == planning.HORIZON_MAX
    assert planning.horizon(sundays, CronSchedule("0 4 * * *", "UTC")) == timedelta(days=7)
    assert planning.horizon(IntervalSchedule(5 * 86400), sundays) == timedelta(days=35)
    hour = timedelta(hours=1)
    met = planning.first_overlap((monthly, hour), (sundays, hour), T0)
    assert met == datetime(2027, 8, 1, 3, tzinfo=UTC)  # the next 1st that is a Sunday
    every_minute = IntervalSchedule(60)
    assert planning.first_overlap((every_minute, hour), (sundays, hour), T0) == datetime(
        2026, 11, 29, 3, tzinfo=UTC
    )
    assert (
        planning.first_overlap((monthly, hour), (CronSchedule("0 9 * * *", "UTC"), hour), T0)
        is None
    )


def test_selectors_that_may_share_environments() -> None:
    assert planning.may_share(job("a", "backup"), job("b", "backup", sites=("shop-*",)))
    assert not planning.may_share(
        job("a", "backup", sites=("blog-*",)), job("b", "backup", sites=("shop-*",))
    )
    assert not planning.may_share(
        job("a", "backup", environment="live"), job("b", "backup", environment="staging")
    )
    assert planning.may_share(
        job("a", "backup", environment="all"), job("b", "backup", environment="staging")
    )


def test_target_warnings() -> None:
    updates = Job(
        id="u",
        schedule=None,
        targets=TargetSelector(sites=("shop-*", "blog"), labels=("Gold",)),
        actions=(CATALOGUE.step("update_plugins", exclude=["woo*", "hello-dolly"]),),
    )
    sites = {"default": [("shop-one", ["Silver"]), ("shop-two", ["gold"])]}
    installed = {"plugins": {"woocommerce", "akismet"}, "themes": set()}
    found = [text for _, text in planning.target_warnings([updates], sites, installed)]
    assert found == [
        "targets.sites: 'blog' matches no site (yet)",
        "update_plugins.exclude: no environment has plugins 'hello-dolly'",
    ]
    assert planning.target_warnings([updates], sites, None)[1:] == []


def test_plan_marks_dst_gap_and_fold_in_real_zones() -> None:
    for zone, spring, autumn in (
        ("Europe/Amsterdam", datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 10, 24, tzinfo=UTC)),
        ("America/New_York", datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)),
    ):
        gap = CronSchedule("30 2 * * *", zone)
        notes = [schedules.dst_note(gap, t) for t in schedules.upcoming(gap, spring, 3)]
        assert notes[0] is None and notes[2] is None
        assert notes[1] is not None and notes[1].startswith("gap: 02:30 does not exist")
        fold = CronSchedule("30 1 * * *", zone) if "New_York" in zone else gap
        notes = [schedules.dst_note(fold, t) for t in schedules.upcoming(fold, autumn, 3)]
        assert [n is not None and n.startswith("fold") for n in notes] == [False, True, False]
    on_the_hour = CronSchedule("0 3 * * *", "Europe/Amsterdam")  # 03:00 exists on both days
    times = schedules.upcoming(on_the_hour, datetime(2026, 3, 28, tzinfo=UTC), 3)
    assert [schedules.dst_note(on_the_hour, t) for t in times] == [None, None, None]


def test_declared_durations_scale_with_a_scaled_window() -> None:
    """Actions declare Kinsta's durations; a jobs.yaml that scales Kinsta's 60 s window (as
    the sandbox's benchmarks scale time) scales them alike. Learned durations are as seen."""
    nightly = job("n", "backup", "clear_cache")
    kinsta = planning.estimate(nightly, 10, ACTIONS, RateLimits(), NO_HISTORY)
    scaled = planning.estimate(nightly, 10, ACTIONS, RateLimits(window_s=6.0), NO_HISTORY)
    assert scaled.chain_s == pytest.approx(kinsta.chain_s / 10)
    learned = planning.Learned(durations_s={"backup": 7.0, "clear_cache": 1.0})
    assert planning.estimate(nightly, 10, ACTIONS, RateLimits(window_s=6.0), learned).chain_s == 8


def test_plan_shows_a_halt_beside_every_job_with_the_same_update_policy() -> None:
    nightly, agency = job("nightly", "update_plugins"), job("agency", "backup", "update_plugins")
    themes, cache = job("themes", "update_themes"), job("cache", "clear_cache")
    jobs = [nightly, agency, themes, cache]

    def ended(job_id: str, status: RunStatus) -> Run:
        return Run(1, job_id, RunTrigger.SCHEDULE, T0, T0, T0, status, error="halted: 2 ...")

    latest = {
        "nightly": ended("nightly", RunStatus.HALTED),
        "agency": ended("agency", RunStatus.SUCCEEDED),
        "themes": ended("themes", RunStatus.HALTED),
    }
    halted = {j.id: [r.job_id for r in planning.halts(j, jobs, latest)] for j in jobs}
    assert halted == {
        "nightly": ["nightly"],
        "agency": ["nightly"],  # updates plugins too: the same release may be on its sites
        "themes": ["themes"],
        "cache": [],
    }
