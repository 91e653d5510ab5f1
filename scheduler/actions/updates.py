"""Plugin and theme updates: read the list, choose what to update (include, exclude, how big a
step, how long a version has been on offer), one bulk call per environment, versions recorded
before and after. With `safe: true`: a manual backup first, then verification, and the backup
restored when verification fails (the task ends `rolled_back`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator

from scheduler.actions import ActionContext, ActionResult, Options, change, define, verify
from scheduler.actions import backups as backup_actions
from scheduler.actions.verify import VerifyOptions
from scheduler.domain import Target, TaskStatus
from scheduler.values import Duration, parse_duration

if TYPE_CHECKING:
    from scheduler.kinsta.client import OperationAccepted
    from scheduler.kinsta.models import WpItem

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
    names = [i.name for i in chosen]
    before = {kind: {i.name: i.version for i in chosen}}
    wanted = {i.name: i.update_version for i in chosen}
    safe = options.safe
    backup = None
    fatals_before: set[str] | None = None
    if safe:
        result, backup = backup_actions.create(ctx, target, SAFE_TAG)
        if backup is None:
            reason = result.message if result.status is not TaskStatus.SUCCEEDED else "not listed"
            return ActionResult(
                TaskStatus.FAILED, f"no update: the safety backup failed ({reason})", details
            )
        details["backup"] = backup_actions.backup_json(backup)
        if options.check_php_errors:
            fatals_before = verify.fatal_lines(ctx, target)

    def in_place() -> bool:
        installed = {i.name: i.version for i in listing(target.environment_id)}
        return all(installed.get(n) == wanted[n] for n in names)

    # After an uncertain answer the update is not sent again: the versions are read back.
    result = change(
        ctx, lambda: bulk(target.environment_id, names), in_place, f"the {kind} updated"
    )
    details.update({k: v for k, v in result.details.items() if k in ("uncertain", "reconciled")})
    # Versions after: read back when the site is verified anyway (safe updates) or the
    # operation did not succeed; otherwise Kinsta's success means the offered versions are in
    # place, and one request per environment is saved.
    if safe or result.status is not TaskStatus.SUCCEEDED:
        now_installed = {i.name: i.version for i in listing(target.environment_id)}
    else:
        now_installed = dict(wanted)
    after = {kind: {name: now_installed.get(name) for name in names}}
    moved = [n for n in names if now_installed.get(n) == wanted[n]]
    details["updated"] = moved
    if result.status is TaskStatus.SUCCEEDED and len(moved) < len(names):
        stuck = ", ".join(n for n in names if n not in moved)
        result = ActionResult(TaskStatus.FAILED, f"the update finished but {stuck} did not move")
    noun = kind if len(moved) != 1 else kind.removesuffix("s")
    message = f"updated {len(moved)} {noun}: " + ", ".join(
        f"{n} {before[kind][n]} -> {now_installed.get(n)}" for n in moved
    )
    if safe and backup is not None:
        verdict = verify.check(ctx, target, options.verify, fatals_before)
        details["verify"] = verdict.to_json()
        if not verdict.ok or result.status is not TaskStatus.SUCCEEDED:
            why = verdict.summary() if not verdict.ok else result.message
            restored = backup_actions.restore(ctx, target, backup)
            if restored.status is not TaskStatus.SUCCEEDED:
                return ActionResult(
                    TaskStatus.FAILED,
                    f"{why}; restoring backup {backup.id} FAILED: {restored.message}",
                    details,
                    before,
                    after,
                )
            back = {i.name: i.version for i in listing(target.environment_id)}
            after = {kind: {name: back.get(name) for name in names}}
            details["rolled_back_to"] = backup.id
            return ActionResult(
                TaskStatus.ROLLED_BACK,
                f"{why}; restored backup {backup.id}",
                details,
                before,
                after,
            )
        message += "; site verified"
    if result.status is not TaskStatus.SUCCEEDED:
        return ActionResult(result.status, result.message, details, before, after)
    return ActionResult(TaskStatus.SUCCEEDED, message, details, before, after)


def update_plugins(ctx: ActionContext, target: Target, options: UpdateOptions) -> ActionResult:
    client = ctx.client
    return _update(
        "plugins",
        ctx,
        target,
        options,
        listing=client.list_plugins,
        bulk=client.bulk_update_plugins,
    )


def update_themes(ctx: ActionContext, target: Target, options: UpdateOptions) -> ActionResult:
    client = ctx.client
    return _update(
        "themes", ctx, target, options, listing=client.list_themes, bulk=client.bulk_update_themes
    )


UPDATE_PLUGINS = define(
    "update_plugins", update_plugins, UpdateOptions, requests=3.0, typical_s=90.0
)
UPDATE_THEMES = define("update_themes", update_themes, UpdateOptions, requests=3.0, typical_s=90.0)
