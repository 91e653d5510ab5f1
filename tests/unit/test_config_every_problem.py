"""jobs.yaml problems that hid others, and values that parse but cannot be meant (issue 16)."""

from __future__ import annotations

import pytest

from scheduler.config import parse
from scheduler.errors import ConfigError


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, "jobs.yaml", {})
    return [str(p) for p in caught.value.problems]


def test_an_unknown_key_hides_neither_a_duplicate_id_nor_a_schedule() -> None:
    text = """version: 1
jobs:
  - id: a
    schedule: {cron: "0 0 30 2 *"}
    actions: [clear_cache]
    bogus: 1
  - id: a
    schedule: {cron: "0 3 * * *", every: 1h}
    actions: [clear_cache]
"""
    assert problems(text) == [
        "jobs.yaml:4: job 'a': schedule: cron expression '0 0 30 2 *' never fires (no such date)",
        "jobs.yaml:6: job 'a': bogus: unknown key",
        "jobs.yaml:7: job 'a': id: duplicate job id (first at job #1)",
        "jobs.yaml:8: job 'a': schedule: give exactly one of cron or every",
    ]


def test_a_wrong_section_hides_no_other_section() -> None:
    text = """version: 1
kinsta: {timeout: forever}
notify: {on: [sometimes]}
retention: {older_than: 90d, keep_last: -1}
jobs:
  - id: a
    company: nobody
    actions: [{prune_backups: {keep: 200}}]
"""
    found = problems(text)
    assert found[0].startswith("jobs.yaml:2: kinsta.timeout: 'forever' is not a duration")
    assert found[1].startswith("jobs.yaml:3: notify.on.0: Input should be 'failure'")
    assert found[2].startswith("jobs.yaml:4: retention.keep_last: Input should be greater")
    assert found[3].startswith("jobs.yaml:8: job 'a': actions.0.prune_backups.keep:")
    # Which companies exist is not known while kinsta is wrong: job a's company is not judged.
    assert len(found) == 4


def test_the_companies_are_checked_when_another_section_is_wrong() -> None:
    text = """version: 1
notify: {on: [sometimes]}
jobs:
  - {id: a, company: nobody, actions: [clear_cache]}
"""
    assert problems(text)[1] == (
        "jobs.yaml:4: job 'a': company: unknown company 'nobody' (known: default)"
    )


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        # a wrong flag: the on-demand action is not blamed for the default standing in for it
        (
            "{id: a, schedule: {every: 1h}, allow_scheduled: maybe, actions: [restore_backup]}",
            "allow_scheduled: Input should be a valid boolean",
        ),
        # wrong targets: the action is not blamed for the default environment standing in
        (
            "{id: a, targets: {environment: [staging]}, actions: [push_to_live]}",
            "targets.environment: Input should be a valid string",
        ),
        ("{id: a, schedule: {every: 1h}}", "actions: Field required"),
        ("{id: a b, actions: [clear_cache], on_failure: shrug}", "on_failure: Input should be"),
    ],
)
def test_a_wrong_key_is_reported_once_and_provokes_nothing_else(job: str, expected: str) -> None:
    found = problems(f"version: 1\njobs:\n  - {job}\n")
    ids = [p for p in found if ": id: " in p]  # `a b` is no id, and said so
    assert [p for p in found if p not in ids] == [p for p in found if expected in p]
    assert len([p for p in found if expected in p]) == 1


def test_a_job_with_a_wrong_key_still_has_its_ids_and_actions_checked() -> None:
    found = problems(
        "version: 1\njobs:\n  - {id: a b, timeout: never, actions: [clear_cach, {backup: []}]}\n"
    )
    assert len(found) == 4
    assert "id: job ids are letters, digits and - _ . : (no spaces)" in found[0] + found[1]
    assert any(
        "actions.0: unknown action 'clear_cach' (did you mean 'clear_cache'?" in p for p in found
    )
    assert any(p.endswith("actions.1.backup: options must be a mapping") for p in found)
    assert any("timeout: 'never' is not a duration" in p for p in found)


def test_an_action_given_something_other_than_options_is_a_problem() -> None:
    for options in ("[]", "0", "false", "''"):
        found = problems(
            f"version: 1\njobs:\n  - {{id: a, actions: [{{clear_cache: {options}}}]}}\n"
        )
        assert found == ["jobs.yaml:3: job 'a': actions.0.clear_cache: options must be a mapping"]
    parse("version: 1\njobs:\n  - {id: a, actions: [{clear_cache: }]}\n", "jobs.yaml", {})


@pytest.mark.parametrize("value", ["6m", "23h", "59s", "0", "86399"])
def test_a_retention_under_a_day_cannot_be_meant(value: str) -> None:
    found = problems(f"version: 1\nretention: {{older_than: {value}}}\n")
    assert len(found) == 1
    assert found[0].startswith("jobs.yaml:2: retention.older_than: must be at least 1d: ")
    assert "m means minutes" in found[0]


@pytest.mark.parametrize(("value", "days"), [("1d", 1), ("24h", 1), ("180d", 180), ("26w", 182)])
def test_a_retention_of_a_day_or_more_is_fine(value: str, days: int) -> None:
    config = parse(f"version: 1\nretention: {{older_than: {value}}}\n", "jobs.yaml", {})
    assert config.retention is not None and config.retention.older_than_s == days * 86400


def test_a_never_firing_schedule_is_found_beside_other_problems() -> None:
    text = """version: 1
retention: {older_than: 6m}
jobs:
  - {id: feb30, schedule: {cron: "0 0 30 2 *"}, actions: [clear_cache], bogus: 1}
  - {id: apr31, schedule: {cron: "0 0 31 4 *"}, actions: [clear_cache]}
  - {id: leap, schedule: {cron: "0 0 29 2 *"}, actions: [clear_cache]}
"""
    found = problems(text)
    assert [p.split(": ")[1] for p in found] == [
        "retention.older_than",
        "job 'feb30'",
        "job 'feb30'",
        "job 'apr31'",
    ]
    assert "never fires" in found[1] + found[2] and "never fires" in found[3]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("timeout: true", "timeout: true is not a duration such as 30s"),
        ("misfire_grace: false", "misfire_grace: false is not a duration"),
        ("catch_up: true", "catch_up: give a duration such as 1h, or false"),
        ("catch_up: [1h]", "catch_up: give a duration such as 1h, or false"),
        ("schedule: {every: [1h]}", "schedule.every: ['1h'] is not a duration"),
    ],
)
def test_a_flag_or_a_list_is_no_duration(value: str, words: str) -> None:
    """pydantic read true as 1.0: `catch_up: true` was one second."""
    found = problems(f"version: 1\njobs:\n  - {{id: a, actions: [clear_cache], {value}}}\n")
    assert len(found) == 1 and found[0].startswith(f"jobs.yaml:3: job 'a': {words}"), found


def test_catch_up_false_still_turns_catch_up_off() -> None:
    config = parse(
        "version: 1\njobs: [{id: a, actions: [clear_cache], catch_up: false}]\n", "j", {}
    )
    assert config.jobs[0].catch_up_s is None
