"""Plugin and theme updates: read the list, choose what to update (include, exclude, how big a
step, how long a version has been on offer, not a quarantined version), one bulk call per
environment, versions recorded before and after. With `safe: true`: a manual backup first,
then verification, the backup restored when verification fails (the task ends `rolled_back`),
the culprit isolated and its version quarantined (scheduler.actions.safe)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator

from scheduler.actions import ActionContext, ActionResult, Cost, Options, define, safe
from scheduler.actions.verify import VerifyOptions
from scheduler.domain import Target, TaskStatus
from scheduler.ports import QuarantineEntry
from scheduler.values import Duration, parse_duration

if TYPE_CHECKING:
    from scheduler.kinsta.client import OperationAccepted
    from scheduler.kinsta.models import WpItem

STEPS = ("patch", "minor", "all")
# Polls counted per operation of an isolation step, on the high side (plan's own figure is for
# the usual path, and history's for the night as a whole).
STEP_POLLS = 2.0
LIST_REQUESTS = 1.0  # a step updates items already listed
UNDO_REQUESTS = UNDO_OPERATIONS = 1.0  # a step's restore, or the backup deletion it needs


class UpdateOptions(Options):
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    only: Literal["patch", "minor", "all"] = "all"
    min_age: Duration = 0.0  # seconds once validated
    safe: bool = False
    verify: VerifyOptions = VerifyOptions()
    check_php_errors: bool = True
    isolate: bool = True  # a safe bulk update that fails: find the culprit in halves

    @field_validator("min_age")
    @classmethod
    def _duration(cls, value: str | float) -> float:
        return parse_duration(value)


def _numbers(version: str) -> tuple[int, ...] | None:
    parts = re.findall(r"\d+", version)
    return tuple(int(p) for p in parts) if parts else None


def step(current: str | None, offered: str) -> str:
    """How big an update is: patch (same major.minor), minor (same major) or major. Versions
    that cannot be read count as major, so `only: patch|minor` never takes them."""
    old, new = _numbers(current or ""), _numbers(offered)
    if old is None or new is None:
        return "major"
    old, new = (*old, 0, 0, 0)[:3], (*new, 0, 0, 0)[:3]
    if old[:2] == new[:2]:
        return "patch"
    if old[0] == new[0]:
        return "minor"
    return "major"


def _allowed(size: str, only: str) -> bool:
    return only == "all" or STEPS.index(size if size != "major" else "all") <= STEPS.index(only)


def choose(
    items: list[WpItem],
    options: UpdateOptions,
    first_seen: Mapping[tuple[str, str], datetime],
    now: datetime,
    quarantined: Mapping[tuple[str, str], QuarantineEntry] | None = None,
) -> tuple[list[WpItem], dict[str, str]]:
    """(items to update, held back: name -> why). `quarantined`: (name, version) -> its entry,
    for the versions on offer that no update takes."""
    quarantined = quarantined or {}
    include = options.include or ("*",)
    exclude, only, min_age = options.exclude, options.only, float(options.min_age)
    chosen, held = [], {}
    for item in items:
        if not item.has_update or item.update_version is None:
            continue
        if not any(fnmatchcase(item.name, p) for p in include):
            continue
        if any(fnmatchcase(item.name, p) for p in exclude):
            held[item.name] = "excluded"
            continue
        entry = quarantined.get((item.name, item.update_version))
        if entry is not None:
            held[item.name] = entry.why()
            continue
        size = step(item.version, item.update_version)
        if not _allowed(size, only):
            held[item.name] = f"{size} update to {item.update_version} (only: {only})"
            continue
        seen = first_seen.get((item.name, item.update_version), now)
        age = (now - seen).total_seconds()
        if age < min_age:
            held[item.name] = (
                f"{item.update_version} on offer for {age / 3600:.1f} h, soaking until "
                f"{min_age / 3600:.1f} h (min_age)"
            )
            continue
        chosen.append(item)
    return chosen, held


def _update(
    kind: str,
    ctx: ActionContext,
    target: Target,
    options: UpdateOptions,
    *,
    listing: Callable[[str], list[WpItem]],
    bulk: Callable[[str, list[str]], OperationAccepted],
) -> ActionResult:
    items = listing(target.environment_id)
    offered = [(i.name, i.update_version) for i in items if i.has_update and i.update_version]
    first_seen = ctx.note_available(kind, offered)
    quarantined = ctx.quarantined(kind, offered)
    chosen, held = choose(items, options, first_seen, ctx.now(), quarantined)
    details: dict[str, Any] = {"held_back": held} if held else {}
    barred = sorted(
        n for n, v in offered if (n, v) in quarantined and held.get(n) == quarantined[n, v].why()
    )
    if not chosen:
        return ActionResult(TaskStatus.SKIPPED, _nothing(kind, offered, barred), details)
    batch = safe.Batch(
        kind,
        [i.name for i in chosen],
        {kind: {i.name: i.version for i in chosen}},
        {i.name: i.update_version for i in chosen},
        listing,
    )
    if options.safe:
        policy = safe.Policy(
            options.verify, options.check_php_errors, options.isolate, step_requests(options)
        )
        result = safe.safe_update(ctx, target, policy, batch, bulk=bulk, details=details)
    else:
        result = _plain(ctx, target, batch, bulk, details)
    return _with_held(result, barred)


def _nothing(kind: str, offered: list[tuple[str, str]], barred: list[str]) -> str:
    """Why a task updates nothing."""
    if not offered:
        return f"{kind}: no updates available"
    reason = f"{kind}: no update passes the job's filters"
    return f"{reason}; held back (quarantined): {', '.join(barred)}" if barred else reason


def _with_held(result: ActionResult, barred: list[str]) -> ActionResult:
    """An update that held quarantined versions back says so in its message too."""
    if not barred or result.status is TaskStatus.SKIPPED:
        return result
    return replace(
        result, message=f"{result.message}; held back (quarantined): {', '.join(barred)}"
    )


def _plain(
    ctx: ActionContext,
    target: Target,
    batch: safe.Batch,
    bulk: Callable[[str, list[str]], OperationAccepted],
    details: dict[str, Any],
) -> ActionResult:
    """An update without a backup or verification: what moved."""
    result, installed = safe.apply(ctx, target, batch, bulk, details, read_back=False)
    after = batch.versions(installed)
    moved = [n for n in batch.names if installed.get(n) == batch.wanted[n]]
    details["updated"] = moved
    result = safe.stuck(result, batch, installed)
    if result.status is not TaskStatus.SUCCEEDED:
        return ActionResult(result.status, result.message, details, batch.before, after)
    message = f"updated {safe.counted(batch.kind, moved)}: {batch.moves(moved, installed)}"
    return ActionResult(TaskStatus.SUCCEEDED, message, details, batch.before, after)


def update_plugins(ctx: ActionContext, target: Target, options: UpdateOptions) -> ActionResult:
    client = ctx.client
    return _update(
        "plugins",
        ctx,
        target,
        options,
        listing=client.plugins.list,
        bulk=client.plugins.bulk_update,
    )


def update_themes(ctx: ActionContext, target: Target, options: UpdateOptions) -> ActionResult:
    client = ctx.client
    return _update(
        "themes", ctx, target, options, listing=client.themes.list, bulk=client.themes.bulk_update
    )


def _cost(options: UpdateOptions) -> Cost:
    """The list and the bulk update, when something is on offer. A safe update adds its backup
    (the backup list read before and after), the versions read back and, with
    check_php_errors, the error log read before and after."""
    if not options.safe:
        return Cost(2.0, 1.0)
    return Cost(2.0 + 3.0 + 1.0 + (2.0 if options.check_php_errors else 0.0), 2.0)


def step_requests(options: UpdateOptions) -> float:
    """What one step of culprit isolation asks of Kinsta: a safe update without its list (as
    `_cost` declares it), a restore or the deletion of the backup it supersedes, and the
    operations' polls (STEP_POLLS each)."""
    cost = _cost(options)
    requests = cost.requests - LIST_REQUESTS + UNDO_REQUESTS
    return requests + (cost.operations + UNDO_OPERATIONS) * STEP_POLLS


UPDATE_PLUGINS = define(
    "update_plugins", update_plugins, UpdateOptions, costs=_cost, typical_s=90.0
)
UPDATE_THEMES = define("update_themes", update_themes, UpdateOptions, costs=_cost, typical_s=90.0)
