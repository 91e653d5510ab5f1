"""Notifications: Slack incoming webhooks and generic JSON webhooks, on a run's final failure, on
recovery after a failure, and on missed slots; a heartbeat URL pinged after each successful run
(a dead-man's switch for Healthchecks, Cronitor and the like).

One message per run: failures of the same action across many sites become one line listing
them. Delivery is retried briefly; a notification that cannot be delivered is logged and
recorded in history, never fatal. Webhook URLs carry credentials: only their scheme and host
are ever recorded or logged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from scheduler import __version__
from scheduler.clock import Clock
from scheduler.domain import Job, NotificationRecord, Notify, Run, RunStatus, Secret, Task
from scheduler.errors import StoreError
from scheduler.history import HistoryStore

log = structlog.get_logger("scheduler.notify")

ATTEMPTS = 3
BACKOFF_S = (0.5, 2.0)
MAX_SITES_LISTED = 20


def destination(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


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


class Notifier:
    def __init__(
        self, settings: Notify, store: HistoryStore, clock: Clock, *, timeout_s: float = 10.0
    ) -> None:
        self.settings = settings
        self._store = store
        self._clock = clock
        self._client = httpx.Client(
            timeout=timeout_s, headers={"User-Agent": f"kinsta-scheduler/{__version__}"}
        )

    def close(self) -> None:
        self._client.close()

    # --- what happened ------------------------------------------------------------------------

    def run_finished(self, job: Job | None, run: Run, tasks: Sequence[Task]) -> None:
        if run.status is RunStatus.SUCCEEDED:
            heartbeat = (job.heartbeat_url if job else None) or self.settings.heartbeat_url
            if heartbeat is not None:
                self._ping(heartbeat, run)
            previous = self._store.runs.previous_outcome(run.job_id, run.run_id)
            if previous is RunStatus.FAILED and "recovery" in self.settings.on:
                text = f"kinsta-scheduler: job {run.job_id} recovered: run {run.run_id} succeeded"
                self._send("recovery", run, text, {"previous_status": previous.value})
            return
        if run.status is RunStatus.FAILED and "failure" in self.settings.on:
            lines = failure_lines(tasks) or [run.error or "the run failed"]
            text = f"kinsta-scheduler: job {run.job_id} run {run.run_id} failed\n" + "\n".join(
                f"• {line}" for line in lines
            )
            failures = [
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
            self._send("failure", run, text, {"error": run.error, "failures": failures})

    def missed(self, job_id: str, slots: Sequence[datetime], reason: str) -> None:
        if not slots or "missed" not in self.settings.on:
            return
        text = (
            f"kinsta-scheduler: job {job_id} missed {len(slots)} slot(s), the latest "
            f"{slots[-1].isoformat()}: {reason}"
        )
        extra = {"missed": [s.isoformat() for s in slots[-MAX_SITES_LISTED:]], "reason": reason}
        self._deliver_all("missed", job_id, None, text, extra)

    # --- delivery -----------------------------------------------------------------------------

    def _send(self, kind: str, run: Run, text: str, extra: dict[str, Any]) -> None:
        body = {"run_id": run.run_id, "status": run.status.value, **extra}
        self._deliver_all(kind, run.job_id, run.run_id, text, body)

    def _deliver_all(
        self, kind: str, job_id: str, run_id: int | None, text: str, extra: dict[str, Any]
    ) -> None:
        for hook in self.settings.webhooks:
            if hook.kind == "slack":
                payload: dict[str, Any] = {"text": text}
            else:
                payload = {"event": kind, "job_id": job_id, "text": text, **extra}
            self._post(kind, hook.kind, hook.url, job_id=job_id, run_id=run_id, payload=payload)

    def _ping(self, url: Secret, run: Run) -> None:
        self._post(
            "heartbeat", "heartbeat", url, job_id=run.job_id, run_id=run.run_id, payload=None
        )

    def _post(
        self,
        kind: str,
        channel: str,
        url: Secret,
        *,
        job_id: str,
        run_id: int | None,
        payload: dict[str, Any] | None,
    ) -> None:
        error = None
        for attempt in range(ATTEMPTS):
            try:
                if payload is None:
                    response = self._client.get(url.reveal())
                else:
                    response = self._client.post(url.reveal(), json=payload)
                if response.status_code < 300:
                    error = None
                    break
                error = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    break  # the receiver refuses it; retrying will not help
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}"
            if attempt < len(BACKOFF_S):
                time.sleep(BACKOFF_S[attempt])
        where = destination(url.reveal())
        if error is None:
            log.info("notification.sent", kind=kind, channel=channel, to=where, job_id=job_id)
        else:
            log.warning(
                "notification.failed",
                kind=kind,
                channel=channel,
                to=where,
                error=error,
                job_id=job_id,
            )
        record = NotificationRecord(
            self._clock.now(), job_id, run_id, kind, channel, where, error is None, error
        )
        try:
            self._store.events.record_notification(record)
        except StoreError as exc:
            log.warning("notification.not_recorded", error=str(exc))
