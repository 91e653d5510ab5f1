"""Plugin and theme updates: read the list, choose what to update (include, exclude, how big a
step, how long a version has been on offer), one bulk call per environment, versions recorded
before and after. With `safe: true`: a manual backup first, then verification, and the backup
restored when verification fails (the task ends `rolled_back`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator

from scheduler.actions import ActionContext, ActionResult, Cost, Options, change, define, verify
from scheduler.actions import backups as backup_actions
from scheduler.actions.verify import VerifyOptions
from scheduler.domain import Target, TaskStatus
from scheduler.values import Duration, parse_duration

if TYPE_CHECKING:
    from scheduler.kinsta.client import OperationAccepted
    from scheduler.kinsta.models import Backup, WpItem

SAFE_TAG = "kinsta-scheduler pre-update"
STEPS = ("patch", "minor", "all")


class UpdateOptions(Options):
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    only: Literal["patch", "minor", "all"] = "all"
    min_age: Duration = 0.0  # seconds once validated
    safe: bool = False
    verify: VerifyOptions = VerifyOptions()
    check_php_errors: bool = True

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
) -> tuple[list[WpItem], dict[str, str]]:
    """(items to update, held back: name -> why)."""
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


@dataclass(frozen=True)
class _Batch:
    """The items one update sends, with their versions before and the versions offered."""

    kind: str
    names: list[str]
    before: dict[str, dict[str, str | None]]
    wanted: dict[str, str | None]
    listing: Callable[[str], list[WpItem]]

    def installed(self, target: Target) -> dict[str, str | None]:
        return {i.name: i.version for i in self.listing(target.environment_id)}

    def versions(self, installed: Mapping[str, str | None]) -> dict[str, dict[str, str | None]]:
        return {self.kind: {name: installed.get(name) for name in self.names}}


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
    chosen, held = choose(items, options, first_seen, ctx.now())
    details: dict[str, Any] = {"held_back": held} if held else {}
    if not chosen:
        reason = "no updates available" if not offered else "no update passes the job's filters"
        return ActionResult(TaskStatus.SKIPPED, f"{kind}: {reason}", details)
    batch = _Batch(
        kind,
        [i.name for i in chosen],
        {kind: {i.name: i.version for i in chosen}},
        {i.name: i.update_version for i in chosen},
        listing,
    )
    backup, fatals_before = None, None
    if options.safe:
        failed, backup, fatals_before = _safety_backup(ctx, target, options, details)
        if failed is not None:
            return failed
    result, now_installed = _apply(ctx, target, batch, bulk, details, read_back=options.safe)
    return _settle(
        ctx,
        target,
        options,
        batch,
        result=result,
        now_installed=now_installed,
        backup=backup,
        fatals_before=fatals_before,
        details=details,
    )


def _safety_backup(
    ctx: ActionContext, target: Target, options: UpdateOptions, details: dict[str, Any]
) -> tuple[ActionResult | None, Backup | None, set[str] | None]:
    """(the failure that stops the update, or None; the backup; the fatal errors before)."""
    result, backup = backup_actions.create(ctx, target, SAFE_TAG)
    if backup is None:
        reason = result.message if result.status is not TaskStatus.SUCCEEDED else "not listed"
        failed = ActionResult(
            TaskStatus.FAILED, f"no update: the safety backup failed ({reason})", details
        )
        return failed, None, None
    details["backup"] = backup_actions.backup_json(backup)
    fatals = verify.fatal_lines(ctx, target) if options.check_php_errors else None
    return None, backup, fatals


def _apply(
    ctx: ActionContext,
    target: Target,
    batch: _Batch,
    bulk: Callable[[str, list[str]], OperationAccepted],
    details: dict[str, Any],
    *,
    read_back: bool,
) -> tuple[ActionResult, dict[str, str | None]]:
    """Send the bulk update; (its result, the versions installed afterwards)."""

    def in_place() -> bool:
        installed = batch.installed(target)
        return all(installed.get(n) == batch.wanted[n] for n in batch.names)

    # After an uncertain answer the update is not sent again: the versions are read back.
    result = change(
        ctx, lambda: bulk(target.environment_id, batch.names), in_place, f"the {batch.kind} updated"
    )
    details.update({k: v for k, v in result.details.items() if k in ("uncertain", "reconciled")})
    # Versions after: read back when the site is verified anyway (safe updates) or the
    # operation did not succeed; otherwise Kinsta's success means the offered versions are in
    # place, and one request per environment is saved.
    if read_back or result.status is not TaskStatus.SUCCEEDED:
        return result, batch.installed(target)
    return result, dict(batch.wanted)


def _settle(
    ctx: ActionContext,
    target: Target,
    options: UpdateOptions,
    batch: _Batch,
    *,
    result: ActionResult,
    now_installed: dict[str, str | None],
    backup: Backup | None,
    fatals_before: set[str] | None,
    details: dict[str, Any],
) -> ActionResult:
    """The task's result: what moved, verified (and rolled back) when the update is safe."""
    kind, names, before = batch.kind, batch.names, batch.before
    after = batch.versions(now_installed)
    moved = [n for n in names if now_installed.get(n) == batch.wanted[n]]
    details["updated"] = moved
    if result.status is TaskStatus.SUCCEEDED and len(moved) < len(names):
        stuck = ", ".join(n for n in names if n not in moved)
        result = ActionResult(TaskStatus.FAILED, f"the update finished but {stuck} did not move")
    noun = kind if len(moved) != 1 else kind.removesuffix("s")
    message = f"updated {len(moved)} {noun}: " + ", ".join(
        f"{n} {before[kind][n]} -> {now_installed.get(n)}" for n in moved
    )
    if options.safe and backup is not None:
        verdict = verify.check(ctx, target, options.verify, fatals_before)
        details["verify"] = verdict.to_json()
        if not verdict.ok or result.status is not TaskStatus.SUCCEEDED:
            why = verdict.summary() if not verdict.ok else result.message
            return _roll_back(
                ctx, target, batch, backup=backup, why=why, details=details, after=after
            )
        message += "; site verified"
    if result.status is not TaskStatus.SUCCEEDED:
        return ActionResult(result.status, result.message, details, before, after)
    return ActionResult(TaskStatus.SUCCEEDED, message, details, before, after)


def _roll_back(
    ctx: ActionContext,
    target: Target,
    batch: _Batch,
    *,
    backup: Backup,
    why: str,
    details: dict[str, Any],
    after: dict[str, dict[str, str | None]],
) -> ActionResult:
    """Restore the safety backup after a failed update or verification."""
    restored = backup_actions.restore(ctx, target, backup)
    if restored.status is not TaskStatus.SUCCEEDED:
        return ActionResult(
            TaskStatus.FAILED,
            f"{why}; restoring backup {backup.id} FAILED: {restored.message}",
            details,
            batch.before,
            after,
        )
    details["rolled_back_to"] = backup.id
    return ActionResult(
        TaskStatus.ROLLED_BACK,
        f"{why}; restored backup {backup.id}",
        details,
        batch.before,
        batch.versions(batch.installed(target)),
    )


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


UPDATE_PLUGINS = define(
    "update_plugins", update_plugins, UpdateOptions, costs=_cost, typical_s=90.0
)
UPDATE_THEMES = define("update_themes", update_themes, UpdateOptions, costs=_cost, typical_s=90.0)
