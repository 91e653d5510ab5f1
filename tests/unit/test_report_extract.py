"""What a report reads of one task's recorded result (scheduler.reports.extract) when history
holds shapes it did not write: older versions' results, odd API answers. Nothing raises; a value
of the wrong shape counts as absent, a version of the wrong shape as unknown."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from scheduler.branding import ReportBranding
from scheduler.domain import TaskStatus
from scheduler.history import memory_store
from scheduler.reporting import PeriodTask, month_period
from scheduler.reports import Selection, extract, gather, render_html, to_document
from tests.report_history import ACME, _task

AT = datetime(2026, 11, 10, 3, 5, tzinfo=UTC)
ODD: list[Any] = [None, 0, 7, True, "text", [], [1, "x"], {}, {"id": "9"}, 1.5, {"a": [1]}]
EVERY = (
    extract.updates_of,
    extract.backups_of,
    extract.pruned_of,
    extract.verification_of,
    extract.rollback_of,
    extract.held_of,
    extract.failure_of,
)
ACTIONS = ("update_plugins", "update_themes", "backup", "prune_backups", "restore_backup")


def task(
    action: str, status: TaskStatus, result: Any, before: Any = None, after: Any = None
) -> PeriodTask:
    return PeriodTask(
        1, 2, "nightly", "acme", "live", action, status, AT, None, before, after, result, 0
    )


def odd_results() -> list[Any]:
    keys = ("backup", "verify", "held_back", "deleted", "quarantined", "rolled_back_to")
    nested = [{"verify": {"ok": "yes", "checks": odd, "problems": odd}} for odd in ODD]
    return [*ODD, *({key: odd} for key in keys for odd in ODD), *nested]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize(
    "status", [TaskStatus.SUCCEEDED, TaskStatus.ROLLED_BACK, TaskStatus.FAILED]
)
def test_no_shape_of_result_or_versions_raises(action: str, status: TaskStatus) -> None:
    for result in odd_results():
        for versions in ODD:
            odd = task(action, status, result, versions, {"plugins": versions, "themes": versions})
            for read in EVERY:
                read(odd)


def test_a_backup_that_is_not_a_mapping_is_no_restored_id() -> None:
    restore = task("restore_backup", TaskStatus.SUCCEEDED, {"backup": 12})
    rollback = extract.rollback_of(restore)
    assert rollback is not None and rollback.restored_backup is None
    assert (
        extract.backups_of(task("backup", TaskStatus.SUCCEEDED, {"backup": [1]}))[0].backup_id
        is None
    )


def test_odd_versions_are_unknown_and_an_odd_new_version_no_update() -> None:
    before: Mapping[str, Any] = {"plugins": {"akismet": ["5.0"], "jetpack": "12"}}
    after: Mapping[str, Any] = {"plugins": {"akismet": "5.1", "jetpack": {"v": 13}, "x": None}}
    updates = extract.updates_of(task("update_plugins", TaskStatus.SUCCEEDED, {}, before, after))
    assert [(u.item, u.before, u.after) for u in updates] == [("akismet", None, "5.1")]


def test_a_verification_with_odd_checks_counts_only_real_ones() -> None:
    verify = {"ok": "false", "checks": [{"ok": True}, "status", {"ok": "yes"}], "problems": "x"}
    found = extract.verification_of(
        task("update_plugins", TaskStatus.SUCCEEDED, {"verify": verify})
    )
    assert found is not None and (found.ok, found.checks_passed, found.checks_total) == (
        False,
        1,
        2,
    )
    assert found.problems == ()


def test_a_report_over_odd_history_is_made() -> None:
    store = memory_store()
    for action in ACTIONS:
        _task(store, ACME, action, AT, TaskStatus.SUCCEEDED, result={"backup": 5, "verify": []})
        _task(store, ACME, action, AT, TaskStatus.ROLLED_BACK, result={"quarantined": 3},
              versions_before={"plugins": []}, versions_after={"plugins": "5.1"})  # fmt: skip
    built = gather(
        store,
        month_period("2026-11", UTC),
        Selection(),
        ReportBranding(),
        datetime(2026, 12, 4, tzinfo=UTC),
    )
    # each rolled-back task, and the restore_backup that succeeded
    assert to_document(built)["fleet"]["rollbacks"] == len(ACTIONS) + 1
    assert "acme" in render_html(built)
