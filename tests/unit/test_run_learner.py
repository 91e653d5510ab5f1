"""The runner's duration learner (scheduler/run/follow.py): when first polls come."""

from __future__ import annotations

from scheduler.run.follow import EXPECTED_SHRINK, MIN_OBSERVED, DurationLearner


def test_nothing_learned_means_no_expectation() -> None:
    assert DurationLearner().expected_s("backup") == 0.0


def test_history_sets_the_estimate_a_little_under_its_value() -> None:
    learner = DurationLearner()
    learner.learn({"backup": 100.0})
    assert learner.expected_s("backup") == EXPECTED_SHRINK * 100.0


def test_what_this_process_sees_counts_once_enough_was_seen() -> None:
    learner = DurationLearner()
    for seconds in range(1, MIN_OBSERVED):
        learner.observe("clear_cache", float(seconds))
    assert learner.expected_s("clear_cache") == 0.0
    learner.observe("clear_cache", 50.0)
    # the 90th percentile of 1, 2, 3, 4, 50 (nearest rank below)
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
