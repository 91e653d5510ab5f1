"""Safe updates (`safe: true`): a manual backup first, then the update, then verification, and
the backup restored when verification fails (the task ends `rolled_back`). Verification
compares the pages with how they answered right before the update, after the safety backup
(verify.baseline): the first step and every step of an isolation against the same baseline.

A version whose update alone was rolled back is quarantined (the task's target, run and task,
and the check that failed, are the evidence). When a bulk update of several items fails
verification and is restored, the culprits are isolated (culprits.py, `isolate: true`, the
default): the items are updated again in halves, each step backed up, verified and restored on
failure, within the run's timeout and the key's rate, so that the good items still update the
same night and only the versions proven guilty (a step of their own failed) are quarantined.
Every step is recorded in the task's result (`steps`).

Backups: the first is the night's safety backup, kept. A step after a kept one needs a backup
of the environment as it now is; the one taken before it by the isolation is deleted first,
and the last at the end, so a safe update leaves one manual backup whatever it did (Kinsta
keeps at most five)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from scheduler.actions import ActionContext, ActionResult, change, culprits, verify
from scheduler.actions import backups as backup_actions
from scheduler.actions.culprits import Verdict
from scheduler.domain import Target, TaskStatus

if TYPE_CHECKING:
    from scheduler.actions.verify import VerifyOptions
    from scheduler.kinsta.client import OperationAccepted
    from scheduler.kinsta.models import Backup, WpItem

SAFE_TAG = "kinsta-scheduler pre-update"

Bulk = Callable[[str, list[str]], "OperationAccepted"]


@dataclass(frozen=True)
class Batch:
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

    def subset(self, names: Sequence[str]) -> Batch:
        return replace(self, names=list(names))

    def moves(self, names: Sequence[str], installed: Mapping[str, str | None]) -> str:
        """ "akismet 5.0 -> 5.1, astra 4.6 -> 4.7" """
        old = self.before[self.kind]
        return ", ".join(f"{n} {old[n]} -> {installed.get(n)}" for n in names)


@dataclass(frozen=True)
class Policy:
    """What a safe update checks, and what a step of isolation costs in requests."""

    verify: VerifyOptions
    check_php_errors: bool
    isolate: bool
    step_requests: float


def apply(
    ctx: ActionContext,
    target: Target,
    batch: Batch,
    bulk: Bulk,
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


def stuck(result: ActionResult, batch: Batch, installed: Mapping[str, str | None]) -> ActionResult:
    """A successful update that left items behind is a failed one."""
    left = [n for n in batch.names if installed.get(n) != batch.wanted[n]]
    if result.status is TaskStatus.SUCCEEDED and left:
        return ActionResult(
            TaskStatus.FAILED, f"the update finished but {', '.join(left)} did not move"
        )
    return result


@dataclass(frozen=True)
class Outcome:
    """One step: the update's result, the versions it left, the verification, and the
    restore of the step's backup when either failed."""

    result: ActionResult
    installed: dict[str, str | None]
    verdict: verify.Verdict
    restored: ActionResult | None
    notes: dict[str, Any] = field(default_factory=dict)  # an answer lost, reconciled

    @property
    def ok(self) -> bool:
        return self.verdict.ok and self.result.status is TaskStatus.SUCCEEDED

    @property
    def why(self) -> str:
        return self.verdict.summary() if not self.verdict.ok else self.result.message


@dataclass
class Steps:
    """One environment's steps, their backups and their record."""

    ctx: ActionContext
    target: Target
    policy: Policy
    batch: Batch
    bulk: Bulk
    current: Backup  # a backup of the environment as it is now, when `fresh`
    baseline: verify.Baseline | None = None  # the pages before the update, for every step
    fresh: bool = True
    extra: Backup | None = None  # a backup the isolation took (deleted when superseded)
    records: list[dict[str, Any]] = field(default_factory=list)
    durations_s: list[float] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # item -> its own step's failure
    aborted: str | None = None  # why a step could not be completed
    broken: bool = False  # a step's restore failed: the environment is as that step left it

    def run(self, names: Sequence[str]) -> Outcome:
        """Update `names` on top of the environment as it is, verify, restore on failure."""
        ctx, target, batch = self.ctx, self.target, self.batch.subset(names)
        started = ctx.now()
        notes: dict[str, Any] = {}
        fatals = verify.fatal_lines(ctx, target) if self.policy.check_php_errors else None
        result, installed = apply(ctx, target, batch, self.bulk, notes, read_back=True)
        result = stuck(result, batch, installed)
        verdict = verify.check(ctx, target, self.policy.verify, fatals, self.baseline)
        outcome = Outcome(result, installed, verdict, None, notes)
        if not outcome.ok:
            outcome = replace(outcome, restored=backup_actions.restore(ctx, target, self.current))
        self.durations_s.append((ctx.now() - started).total_seconds())
        self._record(names, outcome)
        return outcome

    def trial(self, group: tuple[str, ...]) -> Verdict:
        """One step of the isolation (culprits.isolate's `trial`)."""
        if not self._backed_up(group):
            return Verdict.ABORTED
        outcome = self.run(group)
        if outcome.ok:
            self.fresh = False
            return Verdict.PASSED
        if outcome.restored is not None and outcome.restored.status is not TaskStatus.SUCCEEDED:
            self.aborted = f"restoring backup {self.current.id} FAILED: {outcome.restored.message}"
            self.broken = True
            return Verdict.ABORTED
        if outcome.result.status is not TaskStatus.SUCCEEDED:  # not the items' fault
            self.aborted = f"a step's update failed: {outcome.result.message}"
            return Verdict.ABORTED
        if len(group) == 1:
            self.problems[group[0]] = outcome.why
        return Verdict.FAILED

    def go_on(self) -> str | None:
        """Why no further step may start (culprits.isolate's `go_on`): the run winds down (a
        cancel), or has no time left for one."""
        stopping = self.ctx.winding_down()
        if stopping is not None:
            return f"the run winds down: {stopping}"
        backlog = self.ctx.client.backlog()
        return culprits.affordable(
            self.ctx.time_left_s(),
            max(self.durations_s, default=0.0),
            self.policy.step_requests,
            per_window=backlog.per_window,
            window_s=backlog.window_s,
            waiting=backlog.waiting,
        )

    def finish(self) -> None:
        """Delete the last backup the isolation took: the night's first one stays."""
        if self.extra is not None:
            self._drop_extra()

    def _backed_up(self, group: tuple[str, ...]) -> bool:
        """A backup of the environment as it is now: the current one unless a kept step changed
        it since (then the isolation's previous backup goes, and a new one is taken)."""
        if self.fresh:
            return True
        if self.extra is not None:
            self._drop_extra()
        result, made = backup_actions.create(self.ctx, self.target, SAFE_TAG)
        if made is None:
            reason = result.message if result.status is not TaskStatus.SUCCEEDED else "not listed"
            self.aborted = f"a step's backup failed ({reason})"
            self.records.append(
                {"items": list(group), "backup": None, "verdict": Verdict.ABORTED.value,
                 "outcome": "not applied", "problems": [self.aborted]}
            )  # fmt: skip
            return False
        self.current = self.extra = made
        self.fresh = True
        return True

    def _drop_extra(self) -> None:
        assert self.extra is not None
        gone = backup_actions.delete(self.ctx, self.target, self.extra)
        if gone.status is not TaskStatus.SUCCEEDED and self.records:
            self.records[-1]["note"] = f"backup {self.extra.id} not deleted: {gone.message}"
        self.extra = None

    def _record(self, names: Sequence[str], outcome: Outcome) -> None:
        restored = outcome.restored
        if restored is None:
            verdict, then = Verdict.PASSED, "kept"
        elif restored.status is TaskStatus.SUCCEEDED:
            verdict, then = Verdict.FAILED, "restored"
        else:
            verdict, then = Verdict.ABORTED, "restore failed"
        if restored is not None and outcome.result.status is not TaskStatus.SUCCEEDED:
            verdict = Verdict.ABORTED
        problems = list(outcome.verdict.problems)
        if outcome.result.status is not TaskStatus.SUCCEEDED:
            problems.insert(0, outcome.result.message)
        self.records.append({
            "items": list(names),
            "backup": self.current.id,
            "verdict": verdict.value,
            "outcome": then,
            "problems": problems,
            "failed_checks": outcome.verdict.failed(),
            "duration_s": round(self.durations_s[-1], 3),
            **outcome.notes,
        })  # fmt: skip


def safe_update(
    ctx: ActionContext,
    target: Target,
    policy: Policy,
    batch: Batch,
    *,
    bulk: Bulk,
    details: dict[str, Any],
) -> ActionResult:
    """Back up, update, verify; restore on failure, then isolate the culprits (see above)."""
    result, backup = backup_actions.create(ctx, target, SAFE_TAG)
    if backup is None:
        reason = result.message if result.status is not TaskStatus.SUCCEEDED else "not listed"
        return ActionResult(
            TaskStatus.FAILED, f"no update: the safety backup failed ({reason})", details
        )
    details["backup"] = backup_actions.backup_json(backup)
    # The pages as they are right before the update: each step is compared with them.
    baseline = verify.baseline(ctx, target, policy.verify)
    steps = Steps(ctx, target, policy, batch, bulk, backup, baseline)
    first = steps.run(batch.names)
    details.update(first.notes)
    details["updated"] = [n for n in batch.names if first.installed.get(n) == batch.wanted[n]]
    details["verify"] = first.verdict.to_json()
    details["steps"] = steps.records
    after = batch.versions(first.installed)
    if first.ok:
        message = f"updated {counted(batch.kind, details['updated'])}: "
        message += batch.moves(details["updated"], first.installed) + "; site verified"
        return ActionResult(TaskStatus.SUCCEEDED, message, details, batch.before, after)
    assert first.restored is not None
    if first.restored.status is not TaskStatus.SUCCEEDED:
        why = f"{first.why}; restoring backup {backup.id} FAILED: {first.restored.message}"
        return ActionResult(TaskStatus.FAILED, why, details, batch.before, after)
    details["rolled_back_to"] = backup.id
    return _rolled_back(ctx, steps, first, details)


def _rolled_back(
    ctx: ActionContext, steps: Steps, first: Outcome, details: dict[str, Any]
) -> ActionResult:
    """After the first step was restored: a single item is guilty; several are isolated."""
    batch, why = steps.batch, f"{first.why}; restored backup {steps.current.id}"
    # An update that failed or left items behind blames no release: nothing is isolated.
    blamed = first.result.status is TaskStatus.SUCCEEDED
    if blamed and len(batch.names) == 1:
        steps.problems[batch.names[0]] = first.why
        found = culprits.Isolation(guilty=tuple(batch.names))
        return _convicted(ctx, steps, found, why, details)
    if blamed and steps.policy.isolate:
        found = culprits.isolate(batch.names, steps.trial, steps.go_on)
        steps.finish()
        details["isolation"] = {
            "kept": list(found.kept),
            "untried": list(found.untried),
            "stopped": steps.aborted or found.stopped,
        }
        return _convicted(ctx, steps, found, why, details)
    now = batch.versions(batch.installed(steps.target))
    return ActionResult(TaskStatus.ROLLED_BACK, why, details, batch.before, now)


def counted(kind: str, names: Sequence[str]) -> str:
    """ "1 plugin", "3 plugins" """
    return f"{len(names)} {kind if len(names) != 1 else kind.removesuffix('s')}"


def _convicted(
    ctx: ActionContext,
    steps: Steps,
    found: culprits.Isolation,
    why: str,
    details: dict[str, Any],
) -> ActionResult:
    """The task's result once the culprits are known: the guilty versions quarantined (with
    the check their own step failed), the kept items, what was not tried and why."""
    batch = steps.batch
    for name in found.guilty:
        ctx.quarantine(batch.kind, name, str(batch.wanted[name]), steps.problems[name])
    installed = batch.installed(steps.target)
    parts = [why]
    if len(steps.records) > 1:
        parts.append(f"isolated in {len(steps.records) - 1} more step(s)")
    if found.kept:
        moves = batch.moves(found.kept, installed)
        parts.append(f"updated {counted(batch.kind, found.kept)}: {moves}")
    if found.guilty:
        parts.append("quarantined " + ", ".join(f"{n} {batch.wanted[n]}" for n in found.guilty))
    if found.untried:
        stopped = steps.aborted or found.stopped
        parts.append(f"not tried ({stopped}): {', '.join(found.untried)}")
    details["updated"] = list(found.kept)
    details["quarantined"] = [{"name": n, "version": batch.wanted[n]} for n in found.guilty]
    status = TaskStatus.FAILED if steps.broken else TaskStatus.ROLLED_BACK
    return ActionResult(status, "; ".join(parts), details, batch.before, batch.versions(installed))
