"""What the answers say, in Slack's mrkdwn (every name and message from history or Kinsta
escaped). Times are shown with Slack's date token, which each reader sees in their own zone,
except `next`, which says each job's wall time in its zone, as `plan` does."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from scheduler import schedules
from scheduler.domain import (
    CronSchedule,
    InventorySnapshot,
    Job,
    Run,
    SiteAction,
    Target,
    Task,
)
from scheduler.notify.policy import failure_lines
from scheduler.ports import QuarantineEntry
from scheduler.slack.commands import esc

MAX_LISTED = 10  # pending updates, jobs in `next`: the rest are counted


def when(moment: datetime | None) -> str:
    """A time every reader sees in their own zone (the text after | is the fallback, in UTC)."""
    if moment is None:
        return "-"
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def took(run: Run) -> str:
    if run.started_at is None or run.finished_at is None:
        return ""
    seconds = (run.finished_at - run.started_at).total_seconds()
    return f" in {seconds:.1f} s" if seconds < 120 else f" in {seconds / 60:.1f} min"


@dataclass(frozen=True)
class SiteStatus:
    """What `status SITE` knows: from history, and the live site list when history has no
    inventory of the site (then `live` holds its environments as Kinsta lists them)."""

    site: str
    inventory: Sequence[InventorySnapshot]
    actions: Sequence[SiteAction]
    quarantined: Mapping[tuple[str, str, str], QuarantineEntry]
    live: Sequence[Target] = ()


def status(found: SiteStatus) -> str:
    lines = [f"*{esc(found.site)}*"]
    for snapshot in found.inventory:
        lines.append(_environment(snapshot, found.quarantined))
    for target in found.live:
        lines.append(
            f"{esc(target.environment_name)}: PHP {esc(target.php_version or '?')}, WordPress "
            f"{esc(target.wordpress_version or '?')} (from Kinsta now: no inventory in history)"
        )
    if found.actions:
        lines.append("Last outcome of each action:")
    for entry in found.actions:
        message = f": {esc(entry.last_message[:200])}" if entry.last_message else ""
        lines.append(
            f"• {esc(entry.environment)} {esc(entry.action)}: {entry.last_status.value} "
            f"{when(entry.last_finished_at)} (run {entry.last_run_id}){message}"
        )
    if not found.actions:
        lines.append("No run has acted on it yet.")
    return "\n".join(lines)


def _environment(
    snapshot: InventorySnapshot, quarantined: Mapping[tuple[str, str, str], QuarantineEntry]
) -> str:
    pending: list[str] = []
    held: list[str] = []
    for kind, items in (("plugins", snapshot.plugins), ("themes", snapshot.themes)):
        for item in items:
            offered = item.get("update_version")
            if not offered:
                continue
            move = f"{esc(str(item.get('name')))} {esc(str(item.get('version')))} → {esc(offered)}"
            entry = quarantined.get((kind, str(item.get("name")), str(offered)))
            (held if entry else pending).append(move + (" (quarantined)" if entry else ""))
    text = (
        f"{esc(snapshot.environment)}: PHP {esc(snapshot.php_version or '?')}, WordPress "
        f"{esc(snapshot.wordpress_version or '?')} (inventory {when(snapshot.taken_at)})"
    )
    text += f"; {len(pending)} pending update(s)" + _listed(pending)
    if held:
        text += f"; held back: {_listed(held).removeprefix(': ')}"
    return text


def _listed(items: Sequence[str]) -> str:
    if not items:
        return ""
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ": " + ", ".join(items[:MAX_LISTED]) + more


def history(site: str, runs: Sequence[tuple[Run, Sequence[Task]]]) -> str:
    if not runs:
        return f"No run has acted on *{esc(site)}* yet."
    lines = [f"The last {len(runs)} run(s) on *{esc(site)}*, newest first:"]
    for run, tasks in runs:
        who = f" by {esc(run.requested_by)}" if run.requested_by else ""
        lines.append(
            f"• run {run.run_id} {esc(run.job_id)} ({run.trigger.value}{who}): "
            f"{run.status.value} {when(run.started_at or run.scheduled_for)}"
        )
        lines.extend(
            f"    {esc(t.environment)} {esc(t.action)}: {t.status.value}"
            + (f": {esc(t.message[:200])}" if t.message and t.status.is_failure else "")
            for t in tasks
        )
    return "\n".join(lines)


def upcoming(jobs: Iterable[Job], now: datetime, default_zone: str = "UTC") -> str:
    """Each scheduled job's next fire time in its zone (DST cases marked), soonest first."""
    rows, on_demand = [], []
    for job in jobs:
        if job.schedule is None:
            on_demand.append(job.id)
            continue
        zone = job.schedule.timezone if isinstance(job.schedule, CronSchedule) else default_zone
        for moment in schedules.upcoming(job.schedule, now, 1):
            local = moment.astimezone(ZoneInfo(zone))
            note = schedules.dst_note(job.schedule, moment)
            text = f"• {esc(job.id)}: {local:%Y-%m-%d %H:%M} ({zone})"
            rows.append((moment, text + (f" [{esc(note)}]" if note else "")))
    rows.sort(key=lambda row: row[0])
    lines = [text for _, text in rows[:MAX_LISTED]] or ["No job has a schedule."]
    if len(rows) > MAX_LISTED:
        lines.append(f"and {len(rows) - MAX_LISTED} more (`plan` lists them all)")
    if on_demand:
        lines.append(f"Run only when triggered: {esc(', '.join(sorted(on_demand)))}")
    return "\n".join(lines)


def accepted(what: str, user_id: str) -> str:
    return f"<@{esc(user_id)}> asked to {what}: on its way, the result follows here."


def result(run: Run, what: str, tasks: Sequence[Task]) -> str:
    text = (
        f"Run {run.run_id} ({what}) {run.status.value}{took(run)}: {run.tasks_total} task(s), "
        f"{run.tasks_failed} failed."
    )
    if run.error:
        text += f" {esc(run.error[:300])}"
    lines = [text] + [f"• {esc(line[:300])}" for line in failure_lines(tasks)]
    return "\n".join(lines)


def progress(run: Run, what: str, tasks: Sequence[Task], elapsed_s: float) -> str:
    done = [t for t in tasks if t.finished_at is not None]
    failed = sum(1 for t in done if t.status.is_failure)
    return (
        f"Run {run.run_id} ({what}) still running after {elapsed_s / 60:.0f} min: "
        f"{len(done)} of {len(tasks)} task(s) done, {failed} failed."
    )
