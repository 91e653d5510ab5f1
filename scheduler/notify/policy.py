"""Pure rules: which events notify, and the message for each. No I/O: the notifier asks history
for the previous outcome and hands it in; channels format, dispatch delivers.

One message per run: failures of the same action across many sites become one line listing
them. `notify.on` chooses among failure (a run's final failure), recovery (a success after a
failure), missed (slots that did not run), cancelled (a run stopped by hand, with who asked
and why) and halted (a run its circuit breaker stopped, with what tripped it and which
environments it touched); a heartbeat URL is pinged when a run starts and after each
successful run (a dead-man's switch for Healthchecks, Cronitor and the like).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scheduler.domain import Job, Notify, Run, RunStatus, Secret, Task

MAX_SITES_LISTED = 20
STOPPED = (RunStatus.CANCELLED, RunStatus.HALTED)  # ended early on purpose: their own kind


@dataclass(frozen=True)
class Message:
    """What to tell: `kind` is failure, recovery, missed, cancelled, halted, heartbeat, start
    (a run's start ping) or slack_reply (scheduler.slack's answers to a command, posted to its
    response_url); `extra` is what the JSON webhook adds to its body beside the event, the job
    and the text."""

    kind: str
    job_id: str | None  # None: about no job (a reply to a Slack command that ran nothing)
    run_id: int | None
    text: str
    extra: Mapping[str, Any] = field(default_factory=dict)


def failure_lines(tasks: Sequence[Task]) -> list[str]:
    """One line per failed action: the sites it failed on (and why, when they agree)."""
    by_action: dict[str, list[Task]] = {}
    for task in tasks:
        if task.status.is_failure:
            by_action.setdefault(task.action, []).append(task)
    lines = []
    for action, failed in sorted(by_action.items()):
        names = [f"{t.site}/{t.environment}" for t in failed]
        listed = ", ".join(names[:MAX_SITES_LISTED])
        if len(names) > MAX_SITES_LISTED:
            listed += f" and {len(names) - MAX_SITES_LISTED} more"
        reasons = {t.message for t in failed if t.message}
        why = f": {reasons.pop()}" if len(reasons) == 1 else ""
        lines.append(f"{action} failed on {len(failed)} environment(s): {listed}{why}")
    return lines


def heartbeat_url(settings: Notify, job: Job | None) -> Secret | None:
    """The URL a job's runs ping: its own (pinged by that job only), else notify's (pinged by
    every job without its own, and for a run whose job jobs.yaml no longer has)."""
    return (job.heartbeat_url if job else None) or settings.heartbeat_url


def heartbeat(settings: Notify, job: Job | None, run: Run) -> tuple[Secret, Message] | None:
    """The ping after a successful run."""
    url = heartbeat_url(settings, job)
    if run.status is not RunStatus.SUCCEEDED or url is None:
        return None
    return url, Message("heartbeat", run.job_id, run.run_id, "")


def started(settings: Notify, job: Job, run: Run) -> tuple[Secret, Message] | None:
    """The ping when a run starts (to the start URL: see channels.start_url), so that a
    dead-man's switch can tell a run that hangs from one that never started."""
    url = heartbeat_url(settings, job)
    if url is None or settings.heartbeat_start is None:
        return None
    return url, Message("start", run.job_id, run.run_id, "")


def wants_previous(settings: Notify, run: Run) -> bool:
    """Whether `after_run` needs the job's previous outcome (only to tell a recovery)."""
    return run.status is RunStatus.SUCCEEDED and "recovery" in settings.on


def after_run(
    settings: Notify, run: Run, tasks: Sequence[Task], previous: RunStatus | None
) -> Message | None:
    """A run's message, if any: its failure, its early stop (cancelled), or its recovery
    after a failed run."""
    if run.status in STOPPED:
        return _stopped(settings, run, tasks)
    if run.status is RunStatus.SUCCEEDED:
        if previous is RunStatus.FAILED and "recovery" in settings.on:
            text = f"kinsta-scheduler: job {run.job_id} recovered: run {run.run_id} succeeded"
            return _about_run("recovery", run, text, {"previous_status": previous.value})
        return None
    if run.status is not RunStatus.FAILED or "failure" not in settings.on:
        return None
    lines = failure_lines(tasks) or [run.error or "the run failed"]
    text = f"kinsta-scheduler: job {run.job_id} run {run.run_id} failed\n" + "\n".join(
        f"• {line}" for line in lines
    )
    return _about_run("failure", run, text, {"error": run.error, "failures": _failures(tasks)})


def _stopped(settings: Notify, run: Run, tasks: Sequence[Task]) -> Message | None:
    """A run stopped early (its kind is its status): why, and what failed before it stopped."""
    kind = run.status.value
    if kind not in settings.on:
        return None
    text = f"kinsta-scheduler: job {run.job_id} run {run.run_id} {run.error or kind}"
    text += "".join(f"\n• {line}" for line in failure_lines(tasks))
    extra: dict[str, Any] = {"error": run.error, "failures": _failures(tasks)}
    if run.status is RunStatus.HALTED:  # a breaker: which environments the night touched
        touched = sorted({f"{t.site}/{t.environment}" for t in tasks if t.started_at})
        listed = ", ".join(touched[:MAX_SITES_LISTED])
        more = len(touched) - MAX_SITES_LISTED
        text += f"\n• touched {len(touched)} environment(s): {listed}"
        text += f" and {more} more" if more > 0 else ""
        extra["touched"] = touched
    if run.cancel is not None:
        extra["cancel"] = {
            "requested_at": run.cancel.at.isoformat(),
            "requested_by": run.cancel.by,
            "reason": run.cancel.reason,
        }
    return _about_run(kind, run, text, extra)


def _failures(tasks: Sequence[Task]) -> list[dict[str, Any]]:
    return [
        {
            "site": t.site,
            "environment": t.environment,
            "action": t.action,
            "status": t.status.value,
            "message": t.message,
        }
        for t in tasks
        if t.status.is_failure
    ]


def _about_run(kind: str, run: Run, text: str, extra: dict[str, Any]) -> Message:
    body = {"run_id": run.run_id, "status": run.status.value, **extra}
    return Message(kind, run.job_id, run.run_id, text, body)


def after_missed(
    settings: Notify, job_id: str, slots: Sequence[datetime], reason: str
) -> Message | None:
    """One message per batch of missed slots, naming the latest (and listing the last 20)."""
    if not slots or "missed" not in settings.on:
        return None
    text = (
        f"kinsta-scheduler: job {job_id} missed {len(slots)} slot(s), the latest "
        f"{slots[-1].isoformat()}: {reason}"
    )
    extra = {"missed": [s.isoformat() for s in slots[-MAX_SITES_LISTED:]], "reason": reason}
    return Message("missed", job_id, None, text, extra)
