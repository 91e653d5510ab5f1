"""fetch_logs: a bounded tail of an environment's log, and its count of PHP fatal errors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from scheduler.actions import ActionContext, ActionResult, Options, Repeat, define
from scheduler.actions.verify import FATAL
from scheduler.domain import Target, TaskStatus

TAIL_LINES = 50  # kept in history, whatever was fetched
TAIL_CHARS = 16_000


class FetchLogsOptions(Options):
    file: Literal["error", "access", "kinsta-cache-perf"] = "error"
    lines: int = Field(1000, ge=1, le=20000)


def fetch_logs(ctx: ActionContext, target: Target, options: FetchLogsOptions) -> ActionResult:
    """GET .../logs: count the PHP fatal errors in the last `lines` and keep a short tail."""
    file_name, lines = options.file, options.lines
    text = ctx.client.logs.get(target.environment_id, file_name, lines)
    all_lines = text.splitlines()
    fatals = sum(1 for line in all_lines if FATAL in line)
    tail = all_lines[-TAIL_LINES:]
    while tail and sum(len(line) + 1 for line in tail) > TAIL_CHARS:
        tail = tail[1:]
    details = {
        "file": file_name,
        "lines_fetched": len(all_lines),
        "php_fatal_errors": fatals,
        "tail": tail,
    }
    message = f"{len(all_lines)} line(s) of {file_name} log"
    if file_name == "error":
        message += f", {fatals} PHP fatal error(s)"
    return ActionResult(TaskStatus.SUCCEEDED, message, details)


FETCH_LOGS = define(
    "fetch_logs",
    fetch_logs,
    FetchLogsOptions,
    mutating=False,
    repeat=Repeat.ALWAYS,
    requests=1.0,
    operations=0.0,
    typical_s=1.0,
)
