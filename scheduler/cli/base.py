"""What every command shares: the root group and its options, the state it hands down (the
configuration's path and the database), time parsing, output helpers. Exit codes are decided in
scheduler.cli.main only: 0 ok; 1 a run failed; 2 bad configuration or input."""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console

from scheduler import config as config_module
from scheduler import logs, render
from scheduler.domain import Config, Job
from scheduler.errors import BadInputError, NotFoundError

if TYPE_CHECKING:
    from scheduler.history import SqlHistoryStore

FORMATS = ("table", "json", "csv")
MAX_ROW_ID = 2**63 - 1  # a database row id is a signed 64-bit integer
RELATIVE = re.compile(r"^(\d+)\s*(m|h|d|w)$")


class State:
    def __init__(self, config: str | None, database: str | None, *, wide: bool = False) -> None:
        self.env = dict(os.environ)
        self.path = config_module.resolve_path(config, self.env)
        self.database = database
        self.wide = wide  # --wide: tables never wrap

    def load(self, *, require_api_key: bool = False, sandbox: bool = False) -> Config:
        return config_module.load(
            self.path,
            self.env,
            database_override=self.database,
            require_api_key=require_api_key,
            sandbox=sandbox,
        )

    def database_url(self) -> str:
        """For history queries: the database, even when jobs.yaml is absent or invalid."""
        override = self.database or self.env.get(config_module.ENV_DATABASE_URL)
        if override:
            return override
        if not self.path.exists():
            return config_module.default_database_url(self.path)
        return self.load().database_url


def parse_when(value: str | None, now: datetime) -> datetime | None:
    """'7d', '12h', '30m', '2w' ago, or an ISO date/time (local zone unless it names one)."""
    if value is None:
        return None
    match = RELATIVE.match(value.strip())
    try:
        if match:
            unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[match.group(2)]
            return now - timedelta(**{unit: int(match.group(1))})
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadInputError(f"cannot read time {value!r}: use 7d, 12h, 30m or an ISO date") from exc
    except OverflowError as exc:  # timedelta's limit, or before the year 1
        raise BadInputError(f"time {value!r} is out of range (years 1 to 9999)") from exc
    try:
        return (parsed if parsed.tzinfo else parsed.astimezone()).astimezone(UTC)
    except (OverflowError, ValueError) as exc:  # the year 1 or 9999 seen from another zone
        raise BadInputError(f"time {value!r} is out of range (years 1 to 9999)") from exc


def job_named(config: Config, job_id: str) -> Job:
    """The job with this id; NotFoundError (naming the closest id) when there is none."""
    job = config.job(job_id)
    if job is not None:
        return job
    ids = [j.id for j in config.jobs]
    known = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
    hint = did_you_mean(job_id, ids, most=1) or f" (jobs: {known or 'none'})"
    raise NotFoundError(f"no job {job_id!r} in {config.path}{hint}")


def find_job(config: Config, job_id: str) -> Job:
    """The job with this id; NotFoundError with the close ids, if any, when there is none."""
    job = config.job(job_id)
    if job is None:
        known = [j.id for j in config.jobs]
        raise NotFoundError(f"no job {job_id!r} in {config.path}{did_you_mean(job_id, known)}")
    return job


def parse_run_id(value: str) -> int:
    """A run id as typed: a number, NotFoundError past what a row id can be."""
    if not (value.isascii() and value.isdigit()):
        raise BadInputError(f"run id {value!r} is not a number")
    if len(value) > len(str(MAX_ROW_ID)) or int(value) > MAX_ROW_ID:
        raise NotFoundError(f"no run {value}")
    return int(value)


WIDE = 1000  # wide enough that no table wraps: --wide, or no terminal at all


def console_width(*, wide: bool, stdout_tty: bool, env: dict[str, str]) -> int | None:
    """Tables fit the terminal: its width (None: rich asks it), or through a pipe (`| less`)
    the width of the terminal the command runs in, else $COLUMNS; with no terminal at all (a
    file, cron, CI) or with --wide, rows are never wrapped (grep finds a row on one line)."""
    if wide:
        return WIDE
    if stdout_tty:
        return None
    for stream in (sys.stderr, sys.stdin):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if stream.isatty():
                return os.get_terminal_size(stream.fileno()).columns
    columns = env.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and 20 <= int(columns) <= WIDE else WIDE


def complete_job_id(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of a job id: the ids in jobs.yaml (--config, $KINSTA_SCHEDULER_CONFIG
    or ./jobs.yaml), read as plain YAML (no API, no database); none when it cannot be read."""
    given = ctx.find_root().params.get("config_path")
    path = config_module.resolve_path(given, dict(os.environ))
    return [i for i in config_module.job_ids(path) if i.startswith(incomplete)]


def did_you_mean(given: str, known: Sequence[str], *, most: int = 3) -> str:
    """ "; did you mean 'nightly'?" for a mistyped name (empty when nothing is close)."""
    close = difflib.get_close_matches(given, known, n=most, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def make_console() -> Console:
    """Rich console for tables on stdout, as wide as console_width says."""
    context = click.get_current_context(silent=True)
    state = context.find_object(State) if context is not None else None
    wide = state is not None and state.wide
    width = console_width(wide=wide, stdout_tty=sys.stdout.isatty(), env=dict(os.environ))
    return Console(width=width, soft_wrap=False)


@contextlib.contextmanager
def listening(flags: str, host: str, port: int) -> Iterator[None]:
    """Binding a server socket: a port in use or a host that is no address here is bad input."""
    try:
        yield
    except (OSError, OverflowError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise BadInputError(f"{flags}: cannot listen on {host}:{port}: {reason}") from exc


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {logs.mask(message)}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="jobs.yaml (default $KINSTA_SCHEDULER_CONFIG or ./jobs.yaml)",
)
@click.option("--database", metavar="URL", help="history database URL (overrides jobs.yaml)")
@click.option(
    "--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option("--log-format", type=click.Choice(["auto", "json", "console"]), default="auto")
@click.option("--wide", is_flag=True, help="tables never wrap (default: fit the terminal)")
@click.version_option(package_name="kinsta-scheduler")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    database: str | None,
    log_level: str,
    log_format: str,
    wide: bool,
) -> None:
    """Scheduled maintenance for WordPress sites on Kinsta, with a queryable history."""
    logs.configure(log_level, json=None if log_format == "auto" else log_format == "json")
    ctx.obj = State(config_path, database, wide=wide)


sandbox_flag = click.option(
    "--sandbox", is_flag=True, help="use the built-in fake Kinsta API on loopback"
)
upgrade_flag = click.option(
    "--upgrade-db",
    is_flag=True,
    help="migrate an older SQLite history first (PostgreSQL: db upgrade)",
)


def emit(
    fmt: str, rows: list[dict[str, Any]], fields: tuple[str, ...], table: Callable[[], None]
) -> None:
    if fmt == "json":
        click.echo(render.to_json(rows))
    elif fmt == "csv":
        click.echo(render.to_csv(rows, fields), nl=False)
    else:
        table()


def history_store(state: State) -> SqlHistoryStore:
    """The history for this command, closed (its connections with it) when the command ends,
    also when the CLI runs in another program's process (tests, the Slack commands)."""
    from scheduler.bootstrap import open_store

    store = open_store(state.database_url())
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(store.close)
    return store
