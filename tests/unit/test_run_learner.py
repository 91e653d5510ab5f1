"""The runner's duration learner (scheduler/run/follow.py): when first polls come."""

from __future__ import annotations

import threading

import pytest

from scheduler.errors import PollingCancelled
from scheduler.run.follow import (
    COLD_MARGIN,
    EXPECTED_SHRINK,
    MIN_OBSERVED,
    SCOUTS,
    DurationLearner,
    Turn,
)


def test_nothing_learned_means_no_expectation() -> None:
    assert DurationLearner().expected_s("backup") == 0.0


def test_history_sets_the_estimate_a_little_under_its_value() -> None:
    learner = DurationLearner()
    learner.learn({"backup": 100.0})
    assert learner.expected_s("backup") == EXPECTED_SHRINK * 100.0


def test_what_this_process_sees_counts_at_once_with_a_margin_then_as_history_would() -> None:
    learner = DurationLearner()
    learner.observe("clear_cache", 2.0)
    assert learner.expected_s("clear_cache") == COLD_MARGIN * 2.0  # one scout back: its time
    for seconds in range(2, MIN_OBSERVED):
        learner.observe("clear_cache", float(seconds))
    assert learner.expected_s("clear_cache") == COLD_MARGIN * (MIN_OBSERVED - 1)
    learner.observe("clear_cache", 50.0)
    # enough seen: the 97th percentile of 2, 2, 3, 4, 50 (nearest rank below), as history does
    assert learner.expected_s("clear_cache") == EXPECTED_SHRINK * 4.0


def test_history_wins_over_what_this_process_saw() -> None:
    learner = DurationLearner()
    learner.learn({"backup": 10.0})
    for _ in range(MIN_OBSERVED):
        learner.observe("backup", 99.0)
    assert learner.expected_s("backup") == EXPECTED_SHRINK * 10.0


def test_learning_merges_and_ignores_nonsense() -> None:
    learner = DurationLearner()
    learner.learn({"backup": 10.0})
    learner.learn({"restore_backup": 20.0})
    learner.observe("push_to_live", 0.0)
    assert learner.expected_s("backup") == EXPECTED_SHRINK * 10.0
    assert learner.expected_s("restore_backup") == EXPECTED_SHRINK * 20.0


def test_the_first_operations_of_an_unknown_kind_scout_and_the_rest_wait_for_them() -> None:
    learner = DurationLearner()
    never = threading.Event()
    scouts = [learner.turn("backup", never) for _ in range(SCOUTS)]
    assert [s.__enter__().scout for s in scouts] == [True] * SCOUTS  # poll from first_poll
    got: list[Turn] = []
    waiting = threading.Thread(target=lambda: got.append(learner.turn("backup", never).__enter__()))
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive() and not got  # the fourth sends nothing while three scout
    for seconds in (100.0, 90.0):
        learner.observe("backup", seconds)  # a scout saw its operation done
    waiting.join(0.2)
    assert not got  # every scout is heard first
    learner.observe("backup", 110.0)
    waiting.join(2.0)
    assert [(t.expected_s, t.scout) for t in got] == [(COLD_MARGIN * 110.0, False)]


def test_when_a_scout_learned_nothing_a_waiting_operation_scouts_in_its_place() -> None:
    learner = DurationLearner()
    never = threading.Event()
    scouts = [learner.turn("backup", never) for _ in range(SCOUTS)]
    for s in scouts:
        s.__enter__()
    got: list[Turn] = []
    waiting = threading.Thread(target=lambda: got.append(learner.turn("backup", never).__enter__()))
    waiting.start()
    scouts[0].__exit__(None, None, None)  # its operation failed: nothing learned
    waiting.join(2.0)
    assert [t.scout for t in got] == [True]


def test_a_scout_that_succeeded_keeps_its_place() -> None:
    learner = DurationLearner()
    never = threading.Event()
    first = learner.turn("backup", never)
    turn = first.__enter__()
    turn.succeeded = True
    learner.observe("backup", 10.0)
    first.__exit__(None, None, None)
    others = [learner.turn("backup", never) for _ in range(SCOUTS - 1)]
    assert all(o.__enter__().scout for o in others)
    with pytest.raises(PollingCancelled):  # the places are taken: it would wait
        stop = threading.Event()
        stop.set()
        learner.turn("backup", stop).__enter__()


def test_waiting_for_scouts_ends_at_stop() -> None:
    learner = DurationLearner()
    never, stop = threading.Event(), threading.Event()
    scouts = [learner.turn("backup", never) for _ in range(SCOUTS)]  # kept: scouting until exit
    for s in scouts:
        s.__enter__()
    stop.set()
    with pytest.raises(PollingCancelled), learner.turn("backup", stop):
        pass  # pragma: no cover - never entered


def test_a_known_kind_needs_no_scouts() -> None:
    learner = DurationLearner()
    learner.learn({"backup": 100.0})
    with learner.turn("backup", threading.Event()) as turn:
        assert (turn.expected_s, turn.scout) == (EXPECTED_SHRINK * 100.0, False)


def test_a_scout_first_polls_at_the_prior_it_is_given() -> None:
    learner = DurationLearner()
    with learner.turn("backup", threading.Event(), prior_s=45.0) as turn:
        assert (turn.expected_s, turn.scout) == (45.0, True)
