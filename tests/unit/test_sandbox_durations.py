"""The sandbox's operation durations (scheduler/sandbox/durations.py): a realistic median per
kind, a bounded spread drawn from a seeded stream of its own, scaled by time_scale."""

from __future__ import annotations

import statistics

import pytest
from click.testing import CliRunner

from scheduler.cli import cli
from scheduler.config import parse
from scheduler.errors import ConfigError
from scheduler.sandbox import Sandbox, SandboxOptions
from scheduler.sandbox.durations import (
    DEFAULT_MEDIAN_S,
    DEFAULT_SPREAD,
    HIGH_FACTOR,
    LOW_FACTOR,
    MEDIAN_S,
    Durations,
    duration_bounds,
    median_s,
)
from scheduler.sandbox.state import ACTION_DURATION_S, Fleet
from tests.conftest import FakeClock


def draws(seed: int, kind: str, count: int, time_scale: float = 1.0, **kw: float) -> list[float]:
    durations = Durations(seed, **kw)
    return [durations.draw(kind, time_scale) for _ in range(count)]


def test_the_medians_are_kinstas_not_a_demos() -> None:
    assert MEDIAN_S["backups:add-manual"] == 120.0
    assert MEDIAN_S["backups:restore"] == 180.0
    assert MEDIAN_S["wp-plugins:bulk-update"] == MEDIAN_S["wp-themes:bulk-update"] == 60.0
    assert MEDIAN_S["wp-plugin:update"] == 30.0
    assert MEDIAN_S["php:restart"] == 20.0
    assert MEDIAN_S["cache:clear"] == 10.0
    assert MEDIAN_S["edgeCache:clear"] < 10.0 and MEDIAN_S["cdn-cache:clear"] < 10.0
    assert min(MEDIAN_S[k] for k in ("sites:add", "site:clone", "environment:clone")) >= 120.0
    assert median_s("no:such-kind") == DEFAULT_MEDIAN_S
    assert ACTION_DURATION_S is MEDIAN_S  # the name state.py exported before, still there


@pytest.mark.parametrize("kind", ["cache:clear", "backups:add-manual", "no:such-kind"])
@pytest.mark.parametrize("time_scale", [1.0, 0.02])
def test_every_draw_lies_within_the_bounds_and_reaches_both(kind: str, time_scale: float) -> None:
    low, high = duration_bounds(kind, time_scale)
    assert (low, high) == (
        median_s(kind) * time_scale * LOW_FACTOR,
        median_s(kind) * time_scale * HIGH_FACTOR,
    )
    drawn = draws(3, kind, 2000, time_scale)
    assert all(low <= d <= high for d in drawn)
    # a wide spread piles draws up at both clips, exactly at the bounds
    wide = draws(3, kind, 2000, time_scale, spread=2.0)
    assert min(wide) == low and max(wide) == high
    assert Durations(3, spread=2.0).bounds(kind, time_scale) == (low, high)


def test_half_the_draws_fall_below_the_median() -> None:
    drawn = draws(5, "backups:add-manual", 4001)
    assert 110 < statistics.median(drawn) < 130
    assert 0.45 < sum(d < 120 for d in drawn) / len(drawn) < 0.55
    unclipped = [d for d in drawn if 60 < d < 360]
    assert len(set(unclipped)) == len(unclipped) > 3800  # spread: no two alike between clips


def test_draws_repeat_per_seed_and_differ_between_seeds() -> None:
    assert draws(7, "cache:clear", 50) == draws(7, "cache:clear", 50)
    assert draws(7, "cache:clear", 50) != draws(8, "cache:clear", 50)


def test_time_scale_scales_every_draw() -> None:
    full, scaled = draws(9, "php:restart", 100), draws(9, "php:restart", 100, 0.1)
    assert scaled == pytest.approx([d * 0.1 for d in full])
    assert duration_bounds("php:restart", 0.1) == pytest.approx((1.0, 6.0))


def test_a_spread_of_zero_makes_every_duration_exactly_the_median() -> None:
    assert draws(1, "backups:restore", 20, 0.5, spread=0.0) == [90.0] * 20
    assert duration_bounds("backups:restore", 0.5, spread=0.0) == (90.0, 90.0)


@pytest.mark.parametrize("spread", [-0.1, 2.5, float("nan")])
def test_a_spread_out_of_range_is_refused(spread: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 2"):
        Durations(1, spread=spread)


def fleet(spread: float = DEFAULT_SPREAD, seed: int = 4) -> Fleet:
    return Fleet(sites=4, seed=seed, time_scale=0.5, clock=FakeClock(), duration_spread=spread)


def test_the_spread_changes_no_id_and_no_cache_choice() -> None:
    spread, exact = fleet(), fleet(spread=0.0)
    for each in (spread, exact):
        env = each.sites[0].environments[0]
        each.start_operation("cache:clear", env.id, env)
    # backups' names and times come from the wall clock: all else must match
    without_backups = [
        {name: {k: v for k, v in env.items() if k != "backups"} for name, env in f.state().items()}
        for f in (spread, exact)
    ]
    assert without_backups[0] == without_backups[1]
    assert spread.company_id == exact.company_id and spread.new_id() == exact.new_id()


def test_each_operation_keeps_its_drawn_duration_and_chains_sum_them() -> None:
    ops = fleet(seed=11)
    first, second = ops.sites[0].environments[0], ops.sites[1].environments[0]
    started = [
        ops.start_operation(kind, env.id, env)
        for kind, env in [
            ("backups:add-manual", first),
            ("wp-plugins:bulk-update", first),
            ("cache:clear", first),
            ("cache:clear", second),
        ]
    ]
    ops.start_operation("sites:add", "pending", None)  # no environment: in no chain
    expected = Durations(11).draw
    assert [o.duration_s for o in started] == [expected(o.kind, 0.5) for o in started]
    assert ops.chains() == {
        first.id: pytest.approx(sum(o.duration_s for o in started[:3])),
        second.id: started[3].duration_s,
    }
    assert all(ops.operations[o.operation_id] is o for o in started)
    low = sum(duration_bounds(o.kind, 0.5)[0] for o in started[:3])
    assert ops.chains()[first.id] >= low


def test_the_spread_reaches_the_fleet_from_options_jobs_yaml_and_the_command_line() -> None:
    assert SandboxOptions().duration_spread == DEFAULT_SPREAD == 0.4
    sandbox = Sandbox(SandboxOptions(companies=2, duration_spread=0.0))
    assert {f.durations.spread for f in sandbox.fleets.values()} == {0.0}
    config = parse("version: 1\nsandbox: {duration_spread: 0}\n", "jobs.yaml", {})
    assert config.sandbox.duration_spread == 0.0
    assert parse("version: 1\n", "jobs.yaml", {}).sandbox.duration_spread == DEFAULT_SPREAD
    with pytest.raises(ConfigError, match="duration_spread"):
        parse("version: 1\nsandbox: {duration_spread: 3}\n", "jobs.yaml", {})
    refused = CliRunner().invoke(cli, ["sandbox", "--duration-spread", "-1"])
    assert refused.exit_code == 2 and "--duration-spread" in refused.output
