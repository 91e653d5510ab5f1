"""plan's arithmetic: requests, rate budget, likely run length, colliding schedules, and DST
marks; validate's target warnings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from scheduler import planning, schedules
from scheduler.actions import registry
from scheduler.actions.catalogue import CATALOGUE
from scheduler.domain import (
    ActionSpec,
    CronSchedule,
    IntervalSchedule,
    Job,
    Schedule,
    TargetSelector,
)

ACTIONS = registry()
T0 = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


def job(job_id: str, *actions: str, sites: tuple[str, ...] = ("*",), **kw: object) -> Job:
    return Job(
        id=job_id,
        schedule=None,
        targets=TargetSelector(sites=sites, **kw),  # type: ignore[arg-type]
        actions=tuple(ActionSpec(a) for a in actions),
    )


def test_estimate_counts_requests_budget_and_waves() -> None:
    nightly = job("n", "backup", "clear_cache")  # 2 + 2 requests per target, concurrency 4
    guess = planning.estimate(nightly, 300, ACTIONS, 120, {})
    assert guess.requests == 1 + 300 * 4
    assert guess.governor_s == (1201 - 120) / 120 * 60
    assert guess.chain_s == ACTIONS["backup"].typical_s + ACTIONS["clear_cache"].typical_s
    assert guess.duration_s == max(guess.governor_s, 75 * guess.chain_s)
    learned = planning.estimate(nightly, 4, ACTIONS, 120, {"backup": 10.0, "clear_cache": 2.0})
    assert learned.chain_s == 12.0 and learned.governor_s == 0.0 and learned.duration_s == 12.0
    unknown = planning.estimate(nightly, None, ACTIONS, 120, {})
    assert unknown.requests is None and unknown.duration_s is None


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
