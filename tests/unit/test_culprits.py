"""Culprit isolation as pure logic: which steps the halving search takes for a given set of bad
items, what it keeps, convicts and leaves untried, and when another step is affordable."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from scheduler.actions.culprits import Isolation, Verdict, affordable, halves, isolate
from scheduler.actions.updates import UPDATE_PLUGINS, UpdateOptions, step_requests

ITEMS = ("akismet", "elementor", "redirection", "wordfence")


def site(bad: Iterable[str]) -> tuple[Callable[[tuple[str, ...]], Verdict], list[tuple[str, ...]]]:
    """A site on which any step including a bad item fails (the items kept so far included):
    its trial, and the record of the groups tried."""
    guilty, applied, tried = set(bad), set[str](), list[tuple[str, ...]]()

    def trial(group: tuple[str, ...]) -> Verdict:
        tried.append(group)
        if guilty & (applied | set(group)):
            return Verdict.FAILED
        applied.update(group)
        return Verdict.PASSED

    return trial, tried


def always() -> str | None:
    return None


def test_halves_put_the_odd_item_first() -> None:
    assert halves(("a", "b", "c")) == (("a", "b"), ("c",))
    assert halves(("a",)) == (("a",), ())


def test_one_bad_among_four_keeps_the_three_good_ones() -> None:
    trial, tried = site({"wordfence"})
    found = isolate(ITEMS, trial, always)
    assert found == Isolation(kept=("akismet", "elementor", "redirection"), guilty=("wordfence",))
    # The first half passed, so the second (on top of it, the failed bulk again) is split at once.
    assert tried == [("akismet", "elementor"), ("redirection",), ("wordfence",)]


def test_a_bad_item_in_the_first_half() -> None:
    trial, tried = site({"akismet"})
    found = isolate(ITEMS, trial, always)
    assert found.kept == ("elementor", "redirection", "wordfence")
    assert found.guilty == ("akismet",)
    assert tried == [
        ("akismet", "elementor"),
        ("akismet",),
        ("elementor",),
        ("redirection", "wordfence"),
    ]


def test_two_bad_items_are_both_convicted_each_by_a_step_of_its_own() -> None:
    trial, tried = site({"elementor", "wordfence"})
    found = isolate(ITEMS, trial, always)
    assert set(found.guilty) == {"elementor", "wordfence"}
    assert set(found.kept) == {"akismet", "redirection"}
    assert all(tried.count((name,)) == 1 for name in found.guilty)


def test_every_item_bad_costs_at_most_two_n_minus_one_steps() -> None:
    items = tuple(f"p{i}" for i in range(8))
    trial, tried = site(items)
    found = isolate(items, trial, always)
    assert found.guilty == items and found.kept == ()
    assert len(tried) + 1 <= 2 * len(items) - 1  # the bulk step counts too


def test_a_single_item_whose_bulk_step_failed_is_guilty_without_another_step() -> None:
    trial, tried = site({"akismet"})
    assert isolate(("akismet",), trial, always) == Isolation(guilty=("akismet",))
    assert tried == []


def test_a_flaky_failure_convicts_nobody() -> None:
    trial, tried = site(set())  # the bulk step failed, but nothing fails again
    found = isolate(ITEMS, trial, always)
    assert found.guilty == () and found.kept == ITEMS
    assert tried == [("akismet", "elementor"), ("redirection",), ("wordfence",)]


def test_no_budget_leaves_the_rest_untried() -> None:
    trial, tried = site({"wordfence"})
    budget = iter([None, "the run's timeout is near"])
    found = isolate(ITEMS, trial, lambda: next(budget, "the run's timeout is near"))
    assert found.kept == ("akismet", "elementor")
    assert found.untried == ("redirection", "wordfence") and found.guilty == ()
    assert found.stopped == "the run's timeout is near"
    assert tried == [("akismet", "elementor")]


def test_an_aborted_step_stops_the_search() -> None:
    def trial(group: tuple[str, ...]) -> Verdict:
        return Verdict.ABORTED

    found = isolate(ITEMS, trial, always)
    assert found.untried == ITEMS and found.stopped == "a step could not be completed"


@pytest.mark.parametrize(
    ("time_left_s", "step_s", "waiting", "allowed"),
    [
        (600.0, 120.0, 0, True),
        (100.0, 120.0, 0, False),  # the longest step so far does not fit
        (600.0, 10.0, 0, True),
        (600.0, 10.0, 600, False),  # 614 requests at 60 a minute need over ten minutes
        (-5.0, 0.0, 0, False),  # past the timeout
    ],
)
def test_a_step_must_fit_before_the_timeout(
    time_left_s: float, step_s: float, waiting: int, allowed: bool
) -> None:
    why = affordable(time_left_s, step_s, 14.0, per_window=60, window_s=60.0, waiting=waiting)
    assert (why is None) is allowed
    if not allowed:
        assert why is not None and "the run's timeout is" in why


def test_a_step_costs_what_the_cost_declaration_says() -> None:
    """A safe update without its list, plus a restore or a backup deletion, with two polls per
    operation (the README's figure)."""
    safe = UPDATE_PLUGINS.cost(UpdateOptions(safe=True))
    assert step_requests(UpdateOptions(safe=True)) == safe.requests + 2.0 * (safe.operations + 1)
    assert step_requests(UpdateOptions(safe=True)) == 14.0
    assert step_requests(UpdateOptions(safe=True, check_php_errors=False)) == 12.0
