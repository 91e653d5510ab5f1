"""Rollouts and the circuit breaker: target order, waves, when a run halts (pure), and how
jobs.yaml declares them."""

from __future__ import annotations

import pytest

from scheduler.config import parse
from scheduler.domain import Target
from scheduler.errors import ConfigError
from scheduler.rollout import HaltAfter, Rollout, Share
from scheduler.run.waves import Tally, tripped, waves


def fleet(count: int) -> list[Target]:
    return [
        Target(f"s{i}", f"site-{i:03d}", f"e{i}", "live", labels=("internal",) if i < 2 else ())
        for i in range(count)
    ]


def pct(value: float) -> Share:
    return Share(percent=value)


def test_waves_are_cumulative_shares_after_the_canary() -> None:
    rollout = Rollout(canary=Share(count=3), waves=(pct(10), pct(50), pct(100)))
    sizes = [len(w) for w in waves(fleet(100), rollout)]
    assert sizes == [3, 7, 40, 50]


def test_every_target_runs_once_in_a_stable_order() -> None:
    rollout = Rollout(canary=pct(5), waves=(pct(30),))
    first = waves(fleet(40), rollout)
    assert [t.key for w in first for t in w] == [
        t.key for w in waves(fleet(40), rollout) for t in w
    ]
    assert sorted(t.key for w in first for t in w) == sorted(t.key for t in fleet(40))
    assert [len(w) for w in first] == [2, 10, 28]  # 5% of 40 and 30%, then the rest (implied)
    # the order does not depend on the order the targets came in
    assert waves(list(reversed(fleet(40))), rollout) == first


def test_a_canary_by_labels_or_by_site_names_leads() -> None:
    by_label = waves(fleet(20), Rollout(canary_labels=("internal",), waves=(pct(50), pct(100))))
    assert {t.site_name for t in by_label[0]} == {"site-000", "site-001"}
    assert [len(w) for w in by_label] == [2, 8, 10]
    by_site = waves(fleet(20), Rollout(canary_sites=("site-01*",), waves=(pct(100),)))
    assert len(by_site[0]) == 10 and all(t.site_name.startswith("site-01") for t in by_site[0])
    assert [len(w) for w in by_site] == [10, 10]


def test_small_fleets_make_no_empty_waves() -> None:
    rollout = Rollout(canary=Share(count=3), waves=(pct(10), pct(50), pct(100)))
    assert [len(w) for w in waves(fleet(2), rollout)] == [2]
    assert [len(w) for w in waves(fleet(5), rollout)] == [3, 2]


def test_the_breaker_trips_on_a_count_or_a_share_of_the_targets_done() -> None:
    halt = HaltAfter(rolled_back=Share(count=2), failed=pct(10))
    assert tripped(halt, Tally(done=5, rolled_back=1)) is None
    reason = tripped(halt, Tally(done=5, rolled_back=2))
    assert reason is not None and "2 of 5 target(s) done were rolled back" in reason
    assert tripped(halt, Tally(done=30, failed=2)) is None  # 6.7%
    assert tripped(halt, Tally(done=30, failed=3)) is not None  # 10%
    assert tripped(halt, Tally(done=2, failed=1)) is None  # 50%, but too few done to say
    assert tripped(None, Tally(done=9, failed=9)) is None


def job_yaml(extra: str) -> str:
    return f"""version: 1
jobs:
  - id: updates
    schedule: {{cron: "0 3 * * *"}}
    actions: [update_plugins]
{extra}"""


def test_jobs_yaml_declares_a_rollout_and_a_breaker() -> None:
    config = parse(
        job_yaml(
            "    rollout: {canary: 3, waves: [10%, 50%], pause: 10m}\n"
            "    halt_after: {rolled_back: 2, failed: 10%}\n"
        ),
        "jobs.yaml",
        {},
    )
    job = config.job("updates")
    assert job is not None and job.rollout is not None
    assert job.rollout.canary == Share(count=3)
    assert job.rollout.waves == (pct(10), pct(50), pct(100))  # the rest: an implied last wave
    assert job.rollout.pause_s == 600
    assert job.halt_after == HaltAfter(rolled_back=Share(count=2), failed=pct(10))
    labelled = parse(job_yaml("    rollout: {canary: {labels: [internal]}}\n"), "jobs.yaml", {})
    rollout = labelled.job("updates").rollout  # type: ignore[union-attr]
    assert rollout is not None and rollout.canary_labels == ("internal",)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    rollout: {canary: 0}\n", "at least 1"),
        ("    rollout: {canary: 150%}\n", "at most 100%"),
        ("    rollout: {canary: lots}\n", "a percentage of them"),
        ("    rollout: {canary: {labels: [a], sites: [b]}}\n", "{labels: [...]} or {sites"),
        ("    rollout: {waves: [50%, 10%]}\n", "further than the one before"),
        ("    rollout: {waves: [10, 50%]}\n", "every wave as a percentage"),
        ("    rollout: {waves: []}\n", "at least 1 item"),
        ("    rollout: {pause: soon}\n", "rollout.pause"),
        ("    rollout: {wave: [10%]}\n", "rollout.wave"),
        ("    halt_after: {rolled_back: -1}\n", "at least 1"),
        ("    halt_after: {failed: 10 percent}\n", "a percentage of them"),
    ],
)
def test_a_bad_rollout_or_breaker_is_named_with_its_field(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(job_yaml(extra), "jobs.yaml", {})
    text = "\n".join(str(p) for p in caught.value.problems)
    assert message in text and "updates" in text and "jobs.yaml:" in text
