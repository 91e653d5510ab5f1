"""sandbox: serve the fake Kinsta API until interrupted."""

from __future__ import annotations

import contextlib
from typing import Any

import click

from scheduler.cli.base import cli, listening
from scheduler.errors import BadInputError
from scheduler.sandbox_values import SandboxRelease, SandboxSettings


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
    help="multiply every operation's duration (1: Kinsta's, a backup about two minutes)",
)
@click.option(
    "--duration-spread",
    type=click.FloatRange(0, 2),
    default=SandboxSettings.duration_spread,
    show_default=True,
    help="how much durations vary around their medians (lognormal sigma); 0: exactly the median",
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
@click.option(
    "--bad-release",
    "bad_releases",
    multiple=True,
    metavar="NAME[@VERSION]:EFFECT",
    help=(
        "an environment that moves to this release shows EFFECT: blank, fatal, path:/PATH, "
        "php-fatals, slow:FACTOR or changed; without @VERSION every update of it (repeatable)"
    ),
)
@click.option(
    "--seeded-updates/--no-seeded-updates",
    default=True,
    show_default=True,
    help="whether the generated plugins and themes offer updates (POST /_sandbox/offer adds more)",
)
def sandbox_command(
    host: str,
    port: int,
    sites: int,
    seed: int,
    time_scale: float,
    duration_spread: float,
    per_minute: int,
    creation_per_minute: int,
    logs_per_minute: int,
    per_ip_per_minute: int,
    operation_ids: str,
    api_key: str | None,
    companies: int,
    faults: str,
    break_on_update: tuple[str, ...],
    bad_releases: tuple[str, ...],
    seeded_updates: bool,
) -> None:
    """Serve the fake Kinsta API until interrupted."""
    from scheduler.sandbox import DEFAULT_API_KEY, Sandbox, SandboxOptions, SandboxServer

    options = SandboxOptions(
        sites=sites,
        seed=seed,
        time_scale=time_scale,
        duration_spread=duration_spread,
        api_key=api_key or DEFAULT_API_KEY,
        per_minute=per_minute,
        creation_per_minute=creation_per_minute,
        logs_per_minute=logs_per_minute,
        per_ip_per_minute=per_ip_per_minute,
        operation_ids=operation_ids,
        companies=companies,
        faults=_parse_faults(faults),
        break_on_update=tuple(_parse_break(value) for value in break_on_update),
        bad_releases=tuple(_parse_release(value) for value in bad_releases),
        seeded_updates=seeded_updates,
    )
    with listening("--host/--port", host, port):
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
    from scheduler.sandbox.admin import BREAK_MODES

    name, _, mode = value.partition(":")
    mode = mode or "fatal"
    if not name or mode not in BREAK_MODES:
        raise BadInputError(
            f"--break-on-update {value!r}: use NAME or NAME:MODE, MODE one of "
            + ", ".join(BREAK_MODES)
        )
    return name, mode


def _parse_release(value: str) -> SandboxRelease:
    """`elementor@3.2.1:fatal`, `elementor:slow:5` -> a bad release."""
    from scheduler.sandbox_values import Effect, parse_version

    release, _, effect = value.partition(":")
    name, at, version = release.partition("@")
    try:
        if not name or (at and not version):
            raise ValueError("use NAME[@VERSION]:EFFECT")
        found = SandboxRelease(name, parse_version(version or None, every=True), effect)
        Effect.parse(effect)
    except ValueError as exc:
        raise BadInputError(f"--bad-release {value!r}: {exc}") from exc
    return found
