"""The command line. Each command parses, composes, calls one function and renders.
Exit codes are decided here only: 0 ok; 1 a run failed; 2 bad configuration or input."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any, NoReturn, TypeVar

import click
import structlog
from rich.console import Console

from scheduler import config as config_module
from scheduler import logs, progress, render
from scheduler.domain import Config, RunStatus, RunTrigger, TaskStatus
from scheduler.errors import (
    AuthenticationError,
    BadInputError,
    ConfigError,
    KinstaError,
    NotFoundError,
    SchedulerError,
    StoreError,
)

FORMATS = ("table", "json", "csv")
E = TypeVar("E")
_RELATIVE = re.compile(r"^(\d+)\s*(m|h|d|w)$")
MAX_ROW_ID = 2**63 - 1  # a database row id is a signed 64-bit integer
PLAN_AT_RANGE = (datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC))


class State:
    def __init__(self, config: str | None, database: str | None) -> None:
        self.env = dict(os.environ)
        self.path = config_module.resolve_path(config, self.env)
        self.database = database

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
    match = _RELATIVE.match(value.strip())
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


def _console() -> Console:
    """Rich console; when piped, wide enough that tables are not squeezed to 80 columns."""
    return Console() if sys.stdout.isatty() else Console(width=200)


@contextlib.contextmanager
def _listening(flags: str, host: str, port: int) -> Iterator[None]:
    """Binding a server socket: a port in use or a host that is no address here is bad input."""
    try:
        yield
    except (OSError, OverflowError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise BadInputError(f"{flags}: cannot listen on {host}:{port}: {reason}") from exc


def _fail(message: str, code: int = 2) -> NoReturn:
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
@click.version_option(package_name="kinsta-scheduler")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    database: str | None,
    log_level: str,
    log_format: str,
) -> None:
    """Scheduled maintenance for WordPress sites on Kinsta, with a queryable history."""
    logs.configure(log_level, json=None if log_format == "auto" else log_format == "json")
    ctx.obj = State(config_path, database)


sandbox_flag = click.option(
    "--sandbox", is_flag=True, help="use the built-in fake Kinsta API on loopback"
)
upgrade_flag = click.option(
    "--upgrade-db",
    is_flag=True,
    help="migrate an older SQLite history first (PostgreSQL: db upgrade)",
)


@cli.command()
@sandbox_flag
@click.option("--offline", is_flag=True, help="do not check targets against the API")
@click.pass_obj
def validate(state: State, sandbox: bool, offline: bool) -> None:
    """Check jobs.yaml and the environment; print every problem; exit 0 or 2. Targets that match
    nothing, and update exclusions naming plugins no site has, are warnings (exit 0)."""
    config = state.load(require_api_key=not sandbox, sandbox=sandbox)
    scheduled = sum(1 for j in config.jobs if j.schedule)
    jobs = len(config.jobs)
    revision = config.revision
    # Online, the key is tried first: a key Kinsta rejects makes the file no good either.
    warnings, note = ([], None) if offline else _target_warnings(config, sandbox=sandbox)
    click.echo(f"{config.path}: ok ({jobs} job(s), {scheduled} scheduled, revision {revision})")
    if offline:
        return
    if note:
        click.echo(f"note: targets not checked: {logs.mask(note)}", err=True)
    for job_id, text in warnings:
        click.echo(f"{config.path}: job {job_id!r}: warning: {text}", err=True)


def _target_warnings(config: Config, *, sandbox: bool) -> tuple[list[tuple[str, str]], str | None]:
    from scheduler.planning import target_warnings
    from scheduler.services import open_services

    # A key Kinsta rejects (401) is an error, not a note: nothing would work with it.
    try:
        services = open_services(config, sandbox=sandbox)
    except AuthenticationError:
        raise
    except SchedulerError as exc:
        return [], str(exc)
    try:
        sites = {
            name: [
                (s.name, [label.name for label in s.labels])
                for s in runner.client.list_sites(runner.company_id)
            ]
            for name, runner in services.runners.items()
        }
        snapshots = services.store.catalogue.latest_inventory()
    except AuthenticationError:
        raise
    except (KinstaError, StoreError) as exc:
        return [], str(exc)
    finally:
        services.close()
    installed: dict[str, set[str]] | None = None
    if snapshots:
        installed = {
            "plugins": {str(p["name"]) for s in snapshots for p in s.plugins},
            "themes": {str(t["name"]) for s in snapshots for t in s.themes},
        }
    return target_warnings(config.jobs, sites, installed), None


@cli.command()
@sandbox_flag
@upgrade_flag
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="serve /metrics (Prometheus) and /healthz on this port",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="address for --metrics-port (0.0.0.0 in a container)",
)
@click.pass_obj
def run(
    state: State, sandbox: bool, upgrade_db: bool, metrics_port: int | None, metrics_host: str
) -> None:
    """Run the daemon: fire jobs on their schedules until SIGTERM or SIGINT."""
    # Until the daemon's own handlers are in place (it may wait for its database first), a
    # SIGTERM ends the start quietly: nothing has been recorded yet.
    signal.signal(signal.SIGTERM, _stop_starting)
    from scheduler.daemon import Collaborators, Daemon, load_for_daemon
    from scheduler.metrics import Metrics, MetricsServer
    from scheduler.notify import Notifier
    from scheduler.services import (
        daemon_hooks,
        identity,
        open_services,
        register_notify_secrets,
    )

    load = load_for_daemon(state.path, state.env, state.database, sandbox)
    config = load()
    register_notify_secrets(config)
    services = open_services(
        config, sandbox=sandbox, upgrade_sqlite=upgrade_db, wait_for_database=True
    )
    server = None
    notifier = None
    try:
        if services.sandbox is not None:
            click.echo(f"sandbox Kinsta API at {services.sandbox.url}", err=True)
        runners = list(services.runners.values())
        clock = runners[0].clock
        metrics = Metrics(services.governors)
        notifier = Notifier(config.notify, services.store, clock)
        daemon = Daemon(
            config,
            Collaborators(
                services.store,
                services.runner_for,
                clock,
                load,
                state.path,
                cancel=services.cancel,
                draining=services.draining,
                owner=identity(),
                default_runner=runners[0] if len(runners) == 1 else None,
                on_run=daemon_hooks(services, metrics, notifier),
                on_missed=notifier.missed,
            ),
        )
        if metrics_port is not None:
            with _listening("--metrics-host/--metrics-port", metrics_host, metrics_port):
                server = MetricsServer(metrics, daemon.health, metrics_host, metrics_port)
            server.start()
            click.echo(f"metrics at http://{metrics_host}:{server.port}/metrics", err=True)
        daemon.install_signal_handlers()
        daemon.run_forever()
    finally:
        if server is not None:
            server.stop()
        if notifier is not None:
            notifier.close()
        services.close()


def _stop_starting(signum: int, _frame: FrameType | None) -> None:
    structlog.get_logger("scheduler.daemon").info(
        "daemon.stopped_while_starting", signal=signal.Signals(signum).name
    )
    raise SystemExit(0)


@cli.command()
@click.argument("job_id")
@sandbox_flag
@upgrade_flag
@click.pass_obj
def trigger(state: State, job_id: str, sandbox: bool, upgrade_db: bool) -> None:
    """Run one job now, in the foreground; exit 0 if every task succeeded, 1 if any failed."""
    from scheduler.services import open_services

    config = state.load(require_api_key=not sandbox, sandbox=sandbox)
    job = config.job(job_id)
    if job is None and not sandbox and state.load(sandbox=True).job(job_id) is not None:
        raise BadInputError(f"job {job_id!r} is sandbox_only: it runs only with --sandbox")
    if job is None:
        raise NotFoundError(f"no job {job_id!r} in {config.path}")
    services = open_services(config, sandbox=sandbox, upgrade_sqlite=upgrade_db)
    try:
        runner = services.runner_for(job)
        governor = services.governors[job.company]
        requests_before = governor.requests
        with progress.shown(runner, governor, sys.stderr.isatty()) as watch:
            result = runner.run(job, RunTrigger.MANUAL, runner.clock.now(), config.revision)
        assert result is not None  # manual runs never collide on a slot
        tasks = services.store.tasks.run_tasks(result.run_id)
    finally:
        services.close()
    counts = Counter(t.status.value for t in tasks)
    click.echo(
        f"run {result.run_id}: {result.status.value}, {result.tasks_total} task(s) ("
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + f"), {result.tasks_failed} failed, {governor.requests - requests_before} API "
        f"request(s), {watch.elapsed_s():.1f}s" + (f" ({result.error})" if result.error else "")
    )
    for task in tasks:
        if task.status.is_failure:
            click.echo(
                f"  {task.status.value}: {task.site}/{task.environment} {task.action}: "
                f"{logs.mask(task.message or '')}"
            )
    if result.status not in (RunStatus.SUCCEEDED, RunStatus.SKIPPED):
        sys.exit(1)


def _store(state: State) -> Any:
    from scheduler.services import open_store

    return open_store(state.database_url())


@cli.group(invoke_without_command=True)
@click.option("--tasks", "as_tasks", is_flag=True, help="one row per task instead of per run")
@click.option("--job", "job_id")
@click.option("--site")
@click.option("--action", help="with --tasks: only this action")
@click.option("--status")
@click.option("--since", help="7d, 12h, 30m or an ISO date/time")
@click.option("--until")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_context
def history(
    ctx: click.Context,
    as_tasks: bool,
    job_id: str | None,
    site: str | None,
    action: str | None,
    status: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    fmt: str,
) -> None:
    """List runs (or tasks), newest first. `history prune` removes old ones."""
    from scheduler.history import RunFilter, TaskFilter

    if ctx.invoked_subcommand is not None:
        return
    state: State = ctx.obj
    statuses = {s.value for s in (TaskStatus if as_tasks else RunStatus)}
    if status is not None and status not in statuses:
        raise BadInputError(f"unknown status {status!r} (one of: {', '.join(sorted(statuses))})")
    if action is not None and not as_tasks:
        raise BadInputError("--action needs --tasks")
    now = datetime.now(UTC)
    since_at, until_at = parse_when(since, now), parse_when(until, now)
    store = _store(state)
    console = _console()
    if as_tasks:
        tasks = store.queries.list_tasks(
            TaskFilter(
                job_id=job_id,
                site=site,
                action=action,
                status=status,
                since=since_at,
                until=until_at,
                limit=limit,
            )
        )
        rows = [render.task_json(t) for t in tasks]
        _emit(
            fmt,
            rows,
            render.TASK_FIELDS,
            lambda: render.tasks_table(tasks, console, f"{len(tasks)} task(s)"),
        )
    else:
        runs = store.queries.list_runs(
            RunFilter(
                job_id=job_id, site=site, status=status, since=since_at, until=until_at, limit=limit
            )
        )
        rows = [render.run_json(r) for r in runs]
        _emit(fmt, rows, render.RUN_FIELDS, lambda: render.runs_table(runs, console))


def _event_log(
    name: str,
    help_text: str,
    fetch: Callable[[Any, datetime | None, int], Sequence[E]],
    to_json: Callable[[E], dict[str, Any]],
    fields: tuple[str, ...],
    table: Callable[[Sequence[E], Console], None],
) -> None:
    """A `history NAME [--since] [--limit] [--format]` command over one kind of recorded event."""

    @history.command(name, help=help_text)
    @click.option(
        "--since", default="7d", show_default=True, help="7d, 12h, 30m or an ISO date/time"
    )
    @click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
    @click.pass_obj
    def command(state: State, since: str, limit: int, fmt: str) -> None:
        items = fetch(_store(state), parse_when(since, datetime.now(UTC)), limit)
        rows = [to_json(item) for item in items]
        _emit(fmt, rows, fields, lambda: table(items, _console()))


_event_log(
    "governor",
    "What the rate governor did: 429s, pauses for other users of a key, long waits.",
    lambda store, since, limit: store.events.governor_events(since, limit),
    render.governor_event_json,
    render.GOVERNOR_FIELDS,
    render.governor_table,
)
_event_log(
    "daemon",
    "What daemons did: starts, stops, jobs.yaml reloaded, rejected (and why) or missing.",
    lambda store, since, limit: store.events.daemon_events(since, limit),
    render.daemon_event_json,
    render.DAEMON_EVENT_FIELDS,
    render.daemon_events_table,
)
_event_log(
    "notifications",
    "Notifications the daemon sent (webhooks, heartbeat pings), and whether they arrived.",
    lambda store, since, limit: store.events.notifications(since, limit),
    render.notification_json,
    render.NOTIFICATION_FIELDS,
    render.notifications_table,
)


@history.command("prune")
@click.option(
    "--older-than", required=True, help="runs scheduled before this long ago (90d, 12w...)"
)
@click.option(
    "--keep-last",
    type=click.IntRange(0),
    default=20,
    show_default=True,
    help="always keep each job's newest N runs",
)
@click.option("--dry-run", is_flag=True, help="count what would be removed, remove nothing")
@click.pass_obj
def history_prune(state: State, older_than: str, keep_last: int, dry_run: bool) -> None:
    """Remove old runs with their tasks and operations, and old governor events, daemon events
    and notifications; a running run is never removed."""
    cutoff = parse_when(older_than, datetime.now(UTC))
    assert cutoff is not None
    result = _store(state).maintenance.prune(cutoff, keep_last, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {result.runs} run(s), {result.tasks} task(s), {result.operations} operation(s) "
        f"scheduled before {render.utc_iso(cutoff)}, keeping each job's newest {keep_last}, "
        f"and {result.events} event(s) and notification(s) from before then"
    )


def _emit(
    fmt: str, rows: list[dict[str, Any]], fields: tuple[str, ...], table: Callable[[], None]
) -> None:
    if fmt == "json":
        click.echo(render.to_json(rows))
    elif fmt == "csv":
        click.echo(render.to_csv(rows, fields), nl=False)
    else:
        table()


@cli.command()
@click.argument("run_id")
@click.option(
    "--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True
)
@click.pass_obj
def show(state: State, run_id: str, fmt: str) -> None:
    """One run with its tasks and each operation's timeline."""
    if not (run_id.isascii() and run_id.isdigit()):
        raise BadInputError(f"run id {run_id!r} is not a number")
    if len(run_id) > len(str(MAX_ROW_ID)) or int(run_id) > MAX_ROW_ID:
        raise NotFoundError(f"no run {run_id}")
    store = _store(state)
    run = store.queries.get_run(int(run_id))
    if run is None:
        raise NotFoundError(f"no run {run_id}")
    tasks = store.tasks.run_tasks(run.run_id)
    if fmt == "json":
        body = render.run_json(run)
        body["tasks"] = [render.task_json(t, with_operations=True) for t in tasks]
        click.echo(render.to_json(body))
    else:
        render.run_detail(run, tasks, _console())


@cli.command()
@click.option("--site", help="only this site")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.pass_obj
def sites(state: State, site: str | None, fmt: str) -> None:
    """One row per site: each action's latest outcome, the last success and the last failure."""
    store = _store(state)
    entries = store.queries.site_actions(site)
    inventory = store.catalogue.latest_inventory(site)
    if site is not None and not entries and not inventory:
        raise NotFoundError(f"no history for site {site!r}")
    rows = render.sites_json(entries, inventory)
    if fmt == "json":
        click.echo(render.to_json(rows))
    elif fmt == "csv":
        flat = [render.site_action_json(e) for e in entries]
        click.echo(render.to_csv(flat, render.SITE_ACTION_FIELDS), nl=False)
    else:
        render.sites_table(rows, _console())


@cli.group()
def db() -> None:
    """The history database's schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_obj
def db_upgrade(state: State, revision: str) -> None:
    """Migrate the schema up to REVISION (default: the newest)."""
    from scheduler.history import make_engine
    from scheduler.history.migrate import current_revision, upgrade

    engine = make_engine(state.database_url())
    before = current_revision(engine)
    upgrade(engine, revision)
    click.echo(f"schema: {before or 'empty'} -> {current_revision(engine)}")


@db.command("current")
@click.pass_obj
def db_current(state: State) -> None:
    """Print the schema revision of the database and of the code."""
    from scheduler.history import make_engine
    from scheduler.history.migrate import current_revision, head_revision

    engine = make_engine(state.database_url())
    click.echo(f"database: {current_revision(engine) or 'empty'}  code: {head_revision(engine)}")


@db.command("downgrade")
@click.argument("revision")
@click.pass_obj
def db_downgrade(state: State, revision: str) -> None:
    """Migrate the schema down to REVISION ('base' removes every table)."""
    from scheduler.history import make_engine
    from scheduler.history.migrate import current_revision, downgrade

    engine = make_engine(state.database_url())
    downgrade(engine, revision)
    click.echo(f"schema: {current_revision(engine) or 'empty'}")


@cli.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--sites", type=click.IntRange(1, 5000), default=6, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--time-scale",
    type=click.FloatRange(0.001, 100),
    default=1.0,
    show_default=True,
    help="multiply every operation's duration",
)
@click.option(
    "--per-minute",
    type=click.IntRange(1),
    default=120,
    show_default=True,
    help="rate limit per key",
)
@click.option(
    "--creation-per-minute",
    type=click.IntRange(1),
    default=5,
    show_default=True,
    help="rate limit per key on creating sites and environments",
)
@click.option(
    "--logs-per-minute",
    type=click.IntRange(1),
    default=35,
    show_default=True,
    help="rate limit per key on the logs endpoint",
)
@click.option(
    "--per-ip-per-minute",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="rate limit per client address, whatever the key",
)
@click.option(
    "--operation-ids",
    type=click.Choice(("fresh", "per-target")),
    envvar="KINSTA_SANDBOX_OPERATION_IDS",
    default="fresh",
    show_default=True,
    help="a fresh <kind>-<uuid> per call, or <kind>-<target id> repeating per target",
)
@click.option("--api-key", envvar="KINSTA_SANDBOX_API_KEY", default=None, help="the key it accepts")
@click.option(
    "--companies",
    type=click.IntRange(1, 50),
    default=1,
    show_default=True,
    help="companies, each with its own sites and key (KEY, KEY-2, KEY-3...)",
)
@click.option(
    "--faults",
    default="",
    metavar="error=P,drop=P,hang=P,...",
    help=(
        "inject faults: shares of API requests answered with an error, dropped or left hanging; "
        "hang_s=S, statuses=500/502/503/504, body=html|json, after_acting=P (errors that "
        "strike after the request was handled), only=polls|mutating|METHOD (see the README)"
    ),
)
@click.option(
    "--break-on-update",
    "break_on_update",
    multiple=True,
    metavar="NAME[:fatal|blank]",
    help="updating this plugin or theme breaks the site's homepage (repeatable)",
)
def sandbox_command(
    host: str,
    port: int,
    sites: int,
    seed: int,
    time_scale: float,
    per_minute: int,
    creation_per_minute: int,
    logs_per_minute: int,
    per_ip_per_minute: int,
    operation_ids: str,
    api_key: str | None,
    companies: int,
    faults: str,
    break_on_update: tuple[str, ...],
) -> None:
    """Serve the fake Kinsta API until interrupted."""
    from scheduler.sandbox import DEFAULT_API_KEY, Sandbox, SandboxOptions, SandboxServer

    options = SandboxOptions(
        sites=sites,
        seed=seed,
        time_scale=time_scale,
        api_key=api_key or DEFAULT_API_KEY,
        per_minute=per_minute,
        creation_per_minute=creation_per_minute,
        logs_per_minute=logs_per_minute,
        per_ip_per_minute=per_ip_per_minute,
        operation_ids=operation_ids,
        companies=companies,
        faults=_parse_faults(faults),
        break_on_update=tuple(_parse_break(value) for value in break_on_update),
    )
    with _listening("--host/--port", host, port):
        server = SandboxServer(Sandbox(options), host=host, port=port)
    click.echo(
        f"sandbox Kinsta API at {server.url} (company {server.sandbox.fleet.company_id}, "
        f"{sites} sites); admin at http://{host}:{server.port}/_sandbox/stats",
        err=True,
    )
    if companies > 1:
        click.echo(f"{companies} companies; their keys: {', '.join(options.keys())}", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


@cli.command()
@click.option("--count", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True
)
@sandbox_flag
@click.option("--offline", is_flag=True, help="do not ask the API for the targets")
@click.option(
    "--at",
    "at",
    metavar="TIME",
    help="plan as if it were this ISO date/time (default: now), e.g. the start of a freeze",
)
@click.pass_obj
def plan(state: State, count: int, fmt: str, sandbox: bool, offline: bool, at: str | None) -> None:
    """Each job's next fire times in its zone (DST cases marked), its targets, the requests a run
    needs and the time the rate limit needs for them; warns about colliding schedules (looking
    over each pair of jobs' common cycle, at least a week ahead, whatever --count shows)."""
    config = state.load(sandbox=sandbox)
    now = _parse_at(at) if at else datetime.now(UTC)
    targets, learned, note = _plan_inputs(state, config, sandbox=sandbox, offline=offline)
    rows, found = _plan(config, now, count, targets, learned)
    for row in rows:
        row["warnings"] = [text for jobs, text in found if row["job_id"] in jobs]
        row["targets_note"] = note
    if fmt == "json":
        click.echo(render.to_json(rows))
        return
    if note:
        click.echo(f"(targets not resolved: {note})")
    for row in rows:
        click.echo(f"{row['job_id']}  ({row['schedule']}, {row['timezone']})")
        if row["targets"] is not None:
            budget = (
                f"{row['governor_minutes']:.1f} min of rate budget"
                if row["governor_minutes"]
                else "within one rate window"
            )
            click.echo(
                f"  {row['targets']} target(s), ~{row['requests']} request(s) per run "
                f"({budget}), a run takes ~{row['duration_minutes']:.1f} min"
            )
        if not row["next_local"]:
            click.echo("  runs only when triggered")
        for moment, dst in zip(row["next_local"], row["dst"], strict=True):
            click.echo(f"  {moment}" + (f"  [{dst}]" if dst else ""))
    for _, text in found:
        click.echo(f"warning: {text}", err=True)


def _parse_at(value: str) -> datetime:
    """plan --at: an ISO date/time (local zone unless it names one), not a relative one."""
    if _RELATIVE.match(value.strip()):
        raise BadInputError(f"--at {value!r}: give an ISO date/time such as 2026-11-27T03:00")
    found = parse_when(value, datetime.now(UTC))
    assert found is not None
    # Planning looks up to a year past it (and fire times beyond): keep clear of the calendar's
    # ends, where a cron's next firing cannot be computed.
    if not PLAN_AT_RANGE[0] <= found <= PLAN_AT_RANGE[1]:
        raise BadInputError(f"--at {value!r}: give a time between the years 1900 and 9000")
    return found


def _plan_inputs(
    state: State, config: Config, *, sandbox: bool, offline: bool
) -> tuple[dict[str, set[str]] | None, dict[str, float], str | None]:
    """(environment ids per job, learned durations, why targets are unknown)."""
    from scheduler.services import open_services, open_store

    learned: dict[str, float] = {}
    with contextlib.suppress(SchedulerError):
        store = open_store(config.database_url)
        learned = store.queries.typical_durations([a.name for j in config.jobs for a in j.actions])
        store.engine.dispose()
    if offline:
        return None, learned, "--offline"
    if not sandbox and any(c.api_key is None for c in config.kinsta.all_companies()):
        return None, learned, "no API key (set KINSTA_API_KEY, or use --sandbox)"
    try:
        services = open_services(config, sandbox=sandbox)
    except SchedulerError as exc:
        return None, learned, str(exc)
    try:
        found = {
            job.id: {t.environment_id or t.key for t in services.runner_for(job).targets(job)}
            for job in config.jobs
        }
    except KinstaError as exc:
        return None, learned, f"Kinsta API: {exc}"
    finally:
        services.close()
    return found, learned, None


def _plan(
    config: Config,
    now: datetime,
    count: int,
    targets: dict[str, set[str]] | None,
    learned: dict[str, float],
) -> tuple[list[dict[str, Any]], list[tuple[tuple[str, ...], str]]]:
    from zoneinfo import ZoneInfo

    from scheduler import planning, schedules
    from scheduler.actions import registry
    from scheduler.domain import CronSchedule

    actions = registry()
    per_minute = config.kinsta.rate_limits.per_minute
    rows, estimates = [], {}
    for job in config.jobs:
        times = schedules.upcoming(job.schedule, now, count) if job.schedule else []
        zone = ZoneInfo(job.schedule.timezone) if isinstance(job.schedule, CronSchedule) else UTC
        resolved = len(targets[job.id]) if targets is not None else None
        guess = planning.estimate(job, resolved, actions, per_minute, learned)
        estimates[job.id] = guess
        rows.append(
            {
                "job_id": job.id,
                "schedule": _describe_schedule(job.schedule),
                "timezone": str(zone),
                "next": [render.utc_iso(t) for t in times],
                "next_local": [t.astimezone(zone).isoformat() for t in times],
                "dst": [schedules.dst_note(job.schedule, t) for t in times] if job.schedule else [],
                "targets": guess.targets,
                "requests": guess.requests,
                "governor_minutes": None if guess.governor_s is None else guess.governor_s / 60,
                "duration_minutes": None if guess.duration_s is None else guess.duration_s / 60,
            }
        )
    shared: dict[tuple[str, str], int | None] = {}
    for index, first in enumerate(config.jobs):
        for second in config.jobs[index + 1 :]:
            if targets is not None:
                common = len(targets[first.id] & targets[second.id])
                if common and first.company == second.company:
                    shared[(first.id, second.id)] = common
            elif planning.may_share(first, second):
                shared[(first.id, second.id)] = None
    return rows, planning.warnings(config.jobs, estimates, now, shared)


FAULT_FLAGS = ("error", "drop", "hang", "hang_s", "statuses", "body", "after_acting", "only")


def _parse_faults(text: str) -> Any:
    """`error=0.05,statuses=502/504,after_acting=0.5,only=mutating` -> Faults."""
    from scheduler.sandbox import Faults

    values: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, equals, value = (s.strip() for s in part.partition("="))
        if name not in FAULT_FLAGS:
            raise BadInputError(f"--faults: unknown fault {name!r} ({', '.join(FAULT_FLAGS)})")
        if not equals:
            raise BadInputError(f"--faults: {part!r} is not NAME=VALUE")
        values[name] = value
    faults = Faults()
    try:
        faults.update(values)
    except ValueError as exc:
        raise BadInputError(f"--faults: {exc}") from exc
    return faults


def _parse_break(value: str) -> tuple[str, str]:
    from scheduler.sandbox.server import BREAK_MODES

    name, _, mode = value.partition(":")
    mode = mode or "fatal"
    if not name or mode not in BREAK_MODES:
        raise BadInputError(
            f"--break-on-update {value!r}: use NAME or NAME:MODE, MODE one of "
            + ", ".join(BREAK_MODES)
        )
    return name, mode


def _describe_schedule(schedule: Any) -> str:
    from scheduler.domain import CronSchedule

    if schedule is None:
        return "no schedule"
    if isinstance(schedule, CronSchedule):
        return f"cron {schedule.expression}"
    return f"every {schedule.every_s:g}s"


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps errors to exit codes and one-line messages; never a traceback."""
    try:
        cli.main(args=argv, prog_name="kinsta-scheduler", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 1)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(logs.mask(str(problem)), err=True)
        sys.exit(2)
    except (BadInputError, StoreError, AuthenticationError) as exc:
        _fail(str(exc))
    except KinstaError as exc:
        _fail(f"Kinsta API: {exc}", 1)
    except SchedulerError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # a bug: still no traceback for the user, but say so plainly
        _fail(f"internal error ({type(exc).__name__}): {exc}; rerun with --log-level debug", 70)
