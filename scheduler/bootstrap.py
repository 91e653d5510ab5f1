"""The composition root: from a Config to the connected parts a command needs (store, clients,
governors, runners, the event bus and its subscribers: history's event log, metrics,
notifications), including the in-process sandbox for --sandbox. Entry points call this, then one
function. The only place that knows how the parts fit together."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from scheduler import logs
from scheduler.clock import CancelScope, Clock, SystemClock
from scheduler.daemon import Collaborators, Daemon
from scheduler.domain import Company, Config, Job, RateLimits, Secret
from scheduler.errors import BadInputError, ConfigError, Problem, StoreError
from scheduler.eventlog import EventLog
from scheduler.events import Bus, GovernorActed, RunStarted, TargetFinished
from scheduler.history import SqlHistoryStore, make_engine, sql_store
from scheduler.history.db import refuse_in_memory
from scheduler.history.events import EventWriter
from scheduler.history.ledger import SqlLedger
from scheduler.history.migrate import ensure_current, ensure_writable
from scheduler.history.sql import RETRY_PAUSE_S
from scheduler.history.usage import UsageWriter
from scheduler.httpd import HttpServer, Routes
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.kinsta.governor import key_fingerprint
from scheduler.kinsta.probe import SiteProbe
from scheduler.metrics import Metrics, add_routes
from scheduler.notify import Dispatcher, Notifier
from scheduler.runner import Progress, Runner
from scheduler.sandbox import Sandbox, SandboxOptions, SandboxServer
from scheduler.sandbox.server import BASE_PATH, UnmatchedOffer
from scheduler.sandbox.state import OPERATION_ID_MODES
from scheduler.slack.service import SlashCommands
from scheduler.usage import RequestCounter

log = structlog.get_logger("scheduler.bootstrap")


def open_store(
    database_url: str, *, upgrade_sqlite: bool = False, wait_s: float = 0.0, recording: bool = False
) -> SqlHistoryStore:
    """Connect and check the schema. With `wait_s` (the daemon: its `db_retry`), a database
    that cannot be reached yet (a failover, a server starting beside it) is waited for with
    backoff, as writes are; a command run by hand fails at once. `recording`: for commands that
    write history (run, trigger, online validate and plan), which need a database that keeps
    what they write: not in memory, and not one that refuses writes (no retrying that)."""
    if recording:
        refuse_in_memory(database_url)
    engine = make_engine(database_url)
    deadline = time.monotonic() + wait_s
    pause = RETRY_PAUSE_S[0]
    while True:
        try:
            ensure_current(engine, upgrade_sqlite=upgrade_sqlite)
            if recording:
                ensure_writable(engine)
            return sql_store(engine)
        except StoreError as exc:
            if not exc.transient or time.monotonic() + pause > deadline:
                engine.dispose()
                raise
            log.warning("history.waiting_for_database", retry_in_s=pause, error=str(exc))
            time.sleep(pause)
            pause = min(pause * 2, RETRY_PAUSE_S[1])
        except BaseException:
            engine.dispose()
            raise


def sandbox_operation_ids() -> str:
    """How the sandbox makes operation ids: KINSTA_SANDBOX_OPERATION_IDS, fresh (the default)
    or per-target, as `sandbox --operation-ids` reads it; the test suite runs under both."""
    mode = os.environ.get("KINSTA_SANDBOX_OPERATION_IDS", "") or "fresh"
    if mode not in OPERATION_ID_MODES:
        raise BadInputError(
            f"KINSTA_SANDBOX_OPERATION_IDS: {mode!r} is not one of {', '.join(OPERATION_ID_MODES)}"
        )
    return mode


def start_sandbox(config: Config) -> SandboxServer:
    """The in-process sandbox of --sandbox, enforcing the limits the governor is configured
    with (jobs.yaml's rate_limits), so that the two agree."""
    options = sandbox_options(config)
    try:
        sandbox = Sandbox(options)
    except UnmatchedOffer as exc:  # it depends on the fleet the seed makes: known only now
        field = f"sandbox.offers.{exc.index}"
        raise ConfigError([Problem(config.path, None, str(exc), field=field)]) from exc
    return SandboxServer(sandbox).start()


def key_scopes(config: Config, *, sandbox: bool) -> dict[str, str | None]:
    """Each company's key fingerprint, what its requests and governor events are recorded
    under (the sandbox's keys with --sandbox); None for a company whose key is not set."""
    companies = config.kinsta.all_companies()
    if sandbox:
        keys = sandbox_options(config).keys()
        return {c.name: key_fingerprint(k) for c, k in zip(companies, keys, strict=True)}
    return {c.name: key_fingerprint(c.api_key.reveal()) if c.api_key else None for c in companies}


def sandbox_options(config: Config) -> SandboxOptions:
    limits = config.kinsta.rate_limits
    return SandboxOptions(
        sites=config.sandbox.sites,
        seed=config.sandbox.seed,
        time_scale=config.sandbox.time_scale,
        duration_spread=config.sandbox.duration_spread,
        per_minute=limits.per_minute,
        creation_per_minute=limits.creation_per_minute,
        logs_per_minute=limits.logs_per_minute,
        per_ip_per_minute=limits.per_ip_per_minute,
        window_s=limits.window_s,
        creation_endpoints=limits.creation_endpoints,
        companies=len(config.kinsta.all_companies()),
        operation_ids=sandbox_operation_ids(),
        bad_releases=config.sandbox.bad_releases,
        offers=config.sandbox.offers,
        seeded_updates=config.sandbox.seeded_updates,
    )


def ip_bucket_key(limits: RateLimits) -> str:
    """The per-IP bucket's key: `rate_limits.ip_key` (the egress address that replicas behind one
    NAT share), else this host's name."""
    return limits.ip_key or socket.gethostname()


@dataclass
class Services:
    """The connected parts of one process; `close` releases them all."""

    config: Config
    store: SqlHistoryStore
    clients: dict[str, KinstaClient]  # by company name
    runners: dict[str, Runner]
    sandbox: SandboxServer | None
    cancel: CancelScope
    governors: dict[str, RateGovernor] = field(default_factory=dict)
    probe: SiteProbe | None = None
    draining: threading.Event = field(default_factory=threading.Event)
    events: EventWriter | None = None  # the governors' events, written off the request path
    usage: UsageWriter | None = None  # requests per minute, written off the request path
    bus: Bus = field(default_factory=Bus)
    clock: Clock = field(default_factory=SystemClock)
    notifier: Notifier | None = None  # open_notifications' (the daemon's, trigger's)

    def runner_for(self, job: Job) -> Runner:
        return self.runners[job.company]

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.close()
        for client in self.clients.values():
            client.close()
        if self.probe is not None:
            self.probe.close()
        if self.events is not None:
            self.events.close()
        if self.usage is not None:
            self.usage.close()
        for runner in self.runners.values():
            runner.locks.settle()
        self.store.close()
        if self.sandbox is not None:
            self.sandbox.stop()


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _keys(config: Config, server: SandboxServer | None) -> list[tuple[Company, str, Secret]]:
    """(company, API URL, key) for each company; the sandbox's keys with --sandbox."""
    companies = config.kinsta.all_companies()
    if server is not None:
        keys = server.sandbox.options.keys()
        return [(c, server.url, Secret(k)) for c, k in zip(companies, keys, strict=True)]
    missing = [c.name for c in companies if c.api_key is None]
    if missing:
        message = f"no API key for {', '.join(missing)}: set KINSTA_API_KEY (or use --sandbox)"
        raise ConfigError([Problem(config.path, None, message)])
    return [(c, config.kinsta.api_url, c.api_key) for c in companies if c.api_key is not None]


def build_daemon(
    services: Services, config: Config, load: Callable[[], Config], path: Path
) -> Daemon:
    """The daemon over these services: their store, runners, cancel events and bus."""
    runners = list(services.runners.values())
    return Daemon(
        config,
        Collaborators(
            services.store,
            services.runner_for,
            runners[0].clock,
            load,
            path,
            cancel=services.cancel,
            draining=services.draining,
            owner=identity(),
            default_runner=runners[0] if len(runners) == 1 else None,
            bus=services.bus,
        ),
    )


def open_daemon_effects(services: Services) -> Metrics:
    """The daemon's subscribers, in the order they hear of a run: metrics, then notifications
    (whose deliveries history's event log records)."""
    metrics = Metrics(services.governors)
    metrics.subscribe(services.bus)
    open_notifications(services)
    return metrics


def open_notifications(services: Services) -> Notifier:
    """Notifications as the daemon sends them (and `trigger`, unless --no-notify): each run's
    start ping and outcome, and missed slots; history's event log records each delivery."""
    register_notify_secrets(services.config)
    dispatcher = Dispatcher(services.clock, services.bus.publish)
    notifier = Notifier(services.config.notify, services.store.runs, dispatcher)
    services.notifier = notifier
    notifier.subscribe(services.bus)
    return notifier


def open_http(
    services: Services,
    metrics: Metrics,
    daemon: Daemon,
    address: tuple[str, int],
    more: Callable[[Routes], object] | None = None,
) -> tuple[HttpServer, SlashCommands]:
    """The daemon's HTTP server, not yet started: /metrics and /healthz, POST /slack/commands
    (answering 404 while jobs.yaml has no notify.slack_commands), and what `more` adds (the
    dashboard, from above). Raises OSError when the address cannot be bound."""
    host, port = address
    routes = add_routes(Routes(), metrics, daemon.health)
    if more is not None:
        more(routes)
    dispatcher = Dispatcher(services.clock, services.bus.publish)
    slack = SlashCommands(daemon, services.store, dispatcher, services.clock)
    try:
        return HttpServer(slack.add_routes(routes), host, port), slack
    except BaseException:
        slack.close()
        raise


def _publish_progress(bus: Bus) -> Callable[[Progress], None]:
    def publish(progress: Progress) -> None:
        bus.publish(
            TargetFinished(
                progress.targets_total, progress.targets_done, progress.target, progress.failed
            )
        )

    return publish


def _publish_governor_events(bus: Bus) -> Callable[[str, str, float | None, str], None]:
    def publish(scope: str, kind: str, seconds: float | None, detail: str) -> None:
        bus.publish(GovernorActed(scope, kind, seconds, detail))

    return publish


def register_notify_secrets(config: Config) -> None:
    """Webhook and heartbeat URLs are credentials, and so are the mail server's password and
    Slack's signing secret: mask them like API keys."""
    notify = config.notify
    secrets = [hook.url for hook in notify.webhooks] + [
        url for url in (notify.heartbeat_url, *(j.heartbeat_url for j in config.jobs)) if url
    ]
    if notify.smtp is not None and notify.smtp.password is not None:
        secrets.append(notify.smtp.password)
    if notify.slack_commands is not None:
        secrets.append(notify.slack_commands.signing_secret)
    for secret in secrets:
        logs.register_secret(secret.reveal())


def open_services(
    config: Config,
    *,
    sandbox: bool,
    clock: Clock | None = None,
    upgrade_sqlite: bool = False,
    wait_for_database: bool = False,
) -> Services:
    clock = clock or SystemClock()
    store = open_store(
        config.database_url,
        upgrade_sqlite=upgrade_sqlite,
        wait_s=config.daemon.db_retry_s if wait_for_database else 0.0,
        recording=True,
    )
    store.retry_s = config.daemon.db_retry_s
    try:
        server = start_sandbox(config) if sandbox else None
    except BaseException:
        store.close()
        raise
    cancel = CancelScope()
    store.stop = cancel  # shutdown's cancel also ends the store's retries
    services = Services(config, store, {}, {}, server, cancel, clock=clock)
    events = services.events = EventWriter(store.events.record_governor_events, clock)
    EventLog(store.events, events).subscribe(services.bus)
    services.usage = UsageWriter(RequestCounter(clock.now), store.requests.add_request_minutes)
    ledger = SqlLedger(store.engine)
    # Verification GETs the sites themselves; the sandbox serves its fake sites by Host header.
    via = server.url.removesuffix(BASE_PATH) if server else config.kinsta.site_base_url
    services.probe = SiteProbe(config.kinsta.timeout_s, via=via)
    try:
        for company, api_url, key in _keys(config, server):
            _connect(services, company, api_url, key, ledger, sandbox=sandbox)
    except BaseException:
        services.close()
        raise
    return services


def _connect(
    services: Services,
    company: Company,
    api_url: str,
    key: Secret,
    ledger: SqlLedger,
    *,
    sandbox: bool,
) -> None:
    """One company's governor, client and runner, each telling the bus what happened."""
    config, store, clock, cancel = services.config, services.store, services.clock, services.cancel
    logs.register_secret(key.reveal())
    governor = RateGovernor(
        config.kinsta.rate_limits,
        clock,
        ledger=ledger,
        scope=key_fingerprint(key.reveal()),
        ip_key=ip_bucket_key(config.kinsta.rate_limits),
        hold_s=config.kinsta.timeout_s,
        on_event=_publish_governor_events(services.bus),
        cancel=cancel,
        on_request=services.usage.counter.count if services.usage else None,
    )
    client = KinstaClient(
        api_url, key, governor, clock, timeout_s=config.kinsta.timeout_s, cancel=cancel
    )
    services.clients[company.name] = client
    services.governors[company.name] = governor
    company_id = (None if sandbox else company.company_id) or client.validate().company
    services.runners[company.name] = Runner(
        client,
        store,
        clock,
        config.kinsta.polling,
        company_id,
        started_by=identity(),
        cancel=cancel,
        probe=services.probe,
        draining=services.draining,
        heartbeat_s=config.daemon.heartbeat_s,
    )
    services.runners[company.name].on_progress = _publish_progress(services.bus)
    services.runners[company.name].on_start = lambda job, run: services.bus.publish(
        RunStarted(job, run)
    )
