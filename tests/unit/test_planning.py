"""plan's arithmetic: requests, rate budget, likely run length, colliding schedules, and DST
marks; validate's target warnings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler import planning, schedules
from scheduler.actions import registry
from scheduler.domain import ActionSpec, CronSchedule, Job, TargetSelector, freeze

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


def test_warnings_for_long_runs_and_colliding_jobs() -> None:
    a, b, c = job("a", "backup"), job("b", "clear_cache"), job("c", "inventory")
    estimates = {
        "a": planning.Estimate("a", 10, 31, 0.0, 90.0, 3600.0),
        "b": planning.Estimate("b", 10, 21, 0.0, 5.0, 60.0),
        "c": planning.Estimate("c", 10, 41, 0.0, 2.0, 20.0),
    }
    fires = {
        "a": [T0, T0 + timedelta(minutes=30)],  # a run of 60 min every 30 min
        "b": [T0 + timedelta(minutes=10)],  # inside a's first run
        "c": [T0 + timedelta(hours=5)],
    }
    shared = {("a", "b"): 10, ("a", "c"): 10}
    found = planning.warnings([a, b, c], estimates, fires, shared)
    assert [jobs for jobs, _ in found] == [("a",), ("a", "b")]
    texts = [text for _, text in found]
    assert texts[0].startswith("job a: a run needs about 60 min but slots are 30 min apart")
    assert "jobs a and b act on 10 shared environment(s)" in texts[1]
    assert "2026-11-29 02:10" in texts[1]


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
        actions=(ActionSpec("update_plugins", freeze({"exclude": ["woo*", "hello-dolly"]})),),
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
