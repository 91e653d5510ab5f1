"""run: the daemon, with its metrics endpoint and its notifications."""

from __future__ import annotations

import contextlib
import signal
from types import FrameType
from typing import TYPE_CHECKING

import click
import structlog

from scheduler.cli.base import State, cli, listening, sandbox_flag, upgrade_flag

if TYPE_CHECKING:
    from scheduler.bootstrap import Services
    from scheduler.daemon import Daemon
    from scheduler.httpd import HttpServer
    from scheduler.metrics import Metrics

HTTP_FLAGS = "--http-host/--http-port"


@cli.command()
@sandbox_flag
@upgrade_flag
@click.option(
    "--http-port",
    "--metrics-port",
    "http_port",
    type=click.IntRange(0, 65535),
    default=None,
    help="serve the daemon's HTTP endpoints on this port: the dashboard (/), /metrics "
    "(Prometheus), /healthz and, with notify.slack_commands, POST /slack/commands "
    "(--metrics-port: the same option)",
)
@click.option(
    "--http-host",
    "--metrics-host",
    "http_host",
    default="127.0.0.1",
    show_default=True,
    help="address for --http-port (0.0.0.0 in a container; behind a TLS proxy for Slack)",
)
@click.pass_obj
def run(
    state: State, sandbox: bool, upgrade_db: bool, http_port: int | None, http_host: str
) -> None:
    """Run the daemon: fire jobs on their schedules until SIGTERM or SIGINT."""
    # Until the daemon's own handlers are in place (it may wait for its database first), a
    # SIGTERM ends the start quietly: nothing has been recorded yet.
    signal.signal(signal.SIGTERM, _stop_starting)
    from scheduler.bootstrap import (
        build_daemon,
        open_daemon_effects,
        open_services,
        register_notify_secrets,
    )
    from scheduler.daemon import load_for_daemon

    load = load_for_daemon(state.path, state.env, state.database, sandbox)
    config = load()
    register_notify_secrets(config)
    services = open_services(
        config, sandbox=sandbox, upgrade_sqlite=upgrade_db, wait_for_database=True
    )
    with contextlib.ExitStack() as stack:
        stack.callback(services.close)
        if services.sandbox is not None:
            click.echo(f"sandbox Kinsta API at {services.sandbox.url}", err=True)
        metrics = open_daemon_effects(services)  # metrics and notifications subscribe to the bus
        daemon = build_daemon(services, config, load, state.path)
        metrics.watch_pauses(daemon.holds.paused_jobs)
        if http_port is not None:
            server = _serve_http(services, metrics, daemon, (http_host, http_port), stack)
            stack.callback(server.stop)
        elif config.notify.slack_commands is not None:
            click.echo("warning: notify.slack_commands needs run --http-port: not served", err=True)
        daemon.install_signal_handlers()
        daemon.run_forever()


def _serve_http(
    services: Services,
    metrics: Metrics,
    daemon: Daemon,
    address: tuple[str, int],
    stack: contextlib.ExitStack,
) -> HttpServer:
    """The daemon's HTTP server. Once the daemon stopped, the server stops taking requests,
    then the Slack commands close (their replies' client), then the services."""
    from scheduler.bootstrap import open_http
    from scheduler.slack.service import PATH
    from scheduler.web.wiring import dashboard_routes

    host, port = address
    pages = dashboard_routes(services, daemon, host)
    with listening(HTTP_FLAGS, host, port):
        server, slack = open_http(services, metrics, daemon, address, pages)
    stack.callback(slack.close)
    server.start()
    click.echo(f"dashboard at http://{host}:{server.port}/", err=True)
    click.echo(f"metrics at http://{host}:{server.port}/metrics", err=True)
    if daemon.config.notify.slack_commands is not None:
        click.echo(f"slack commands at http://{host}:{server.port}{PATH}", err=True)
    return server


def _stop_starting(signum: int, _frame: FrameType | None) -> None:
    structlog.get_logger("scheduler.daemon").info(
        "daemon.stopped_while_starting", signal=signal.Signals(signum).name
    )
    raise SystemExit(0)
