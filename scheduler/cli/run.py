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
    from scheduler.daemon import Daemon
    from scheduler.metrics import Metrics, MetricsServer


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
        if metrics_port is not None:
            server = _serve_metrics(metrics, daemon, metrics_host, metrics_port)
            stack.callback(server.stop)
        daemon.install_signal_handlers()
        daemon.run_forever()


def _serve_metrics(metrics: Metrics, daemon: Daemon, host: str, port: int) -> MetricsServer:
    from scheduler.metrics import MetricsServer

    with listening("--metrics-host/--metrics-port", host, port):
        server = MetricsServer(metrics, daemon.health, host, port)
    server.start()
    click.echo(f"metrics at http://{host}:{server.port}/metrics", err=True)
    return server


def _stop_starting(signum: int, _frame: FrameType | None) -> None:
    structlog.get_logger("scheduler.daemon").info(
        "daemon.stopped_while_starting", signal=signal.Signals(signum).name
    )
    raise SystemExit(0)
