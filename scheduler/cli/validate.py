"""validate: check jobs.yaml and the environment (online: the targets too)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import click

from scheduler import logs
from scheduler.cli.base import State, cli, sandbox_flag
from scheduler.config import live
from scheduler.domain import Config
from scheduler.errors import (
    AuthenticationError,
    ConfigError,
    KinstaError,
    SchedulerError,
    StoreError,
)

# company -> (site name, its labels, its environments' names and display names)
Sites = Mapping[str, Sequence[tuple[str, list[str], list[str]]]]


@cli.command()
@sandbox_flag
@click.option(
    "--offline",
    is_flag=True,
    help="check the file only: no API key needed, nothing asked of Kinsta, no database opened",
)
@click.pass_obj
def validate(state: State, sandbox: bool, offline: bool) -> None:
    """Check jobs.yaml and the environment; print every problem; exit 0 or 2. Online, an
    environment no site has is a problem too; targets that match nothing, and update exclusions
    naming plugins no site has, are warnings (exit 0)."""
    config = state.load(require_api_key=not (sandbox or offline), sandbox=sandbox)
    summary = (
        f"{config.path}: ok ({len(config.jobs)} job(s), "
        f"{sum(1 for j in config.jobs if j.schedule)} scheduled, revision {config.revision})"
    )
    if offline:
        click.echo(summary)
        for text in live.unchecked(config):
            click.echo(f"note: {config.path}: {text}", err=True)
        return
    # Online, the key is tried first: a key Kinsta rejects makes the file no good either.
    sites, installed, note = _read_sites(config, sandbox=sandbox)
    if note:
        click.echo(f"note: targets not checked: {logs.mask(note)}", err=True)
    for job_id, text in _warnings(config, sites, installed):
        click.echo(f"{config.path}: job {job_id!r}: warning: {text}", err=True)
    environments = {
        company: [name for _, _, names in listed for name in names]
        for company, listed in sites.items()
    }
    problems = live.environment_problems(config, environments)
    if problems:
        raise ConfigError(problems)
    click.echo(summary)


def _warnings(
    config: Config, sites: Sites, installed: dict[str, set[str]] | None
) -> list[tuple[str, str]]:
    from scheduler.planning import target_warnings

    labelled = {c: [(name, labels) for name, labels, _ in s] for c, s in sites.items()}
    return target_warnings(config.jobs, labelled, installed)


def _read_sites(
    config: Config, *, sandbox: bool
) -> tuple[Sites, dict[str, set[str]] | None, str | None]:
    """Each company's sites, the plugins and themes of the latest inventory (None: none yet),
    and why the sites could not be read (then no company's are known)."""
    from scheduler.bootstrap import open_services

    # A key Kinsta rejects (401) is an error, not a note: nothing would work with it.
    try:
        services = open_services(config, sandbox=sandbox)
    except AuthenticationError:
        raise
    except SchedulerError as exc:
        return {}, None, str(exc)
    try:
        sites = {
            name: [
                (
                    s.name,
                    [label.name for label in s.labels],
                    [n for e in s.environments for n in (e.name, e.display_name)],
                )
                for s in runner.client.sites.list(runner.company_id, include_environments=True)
            ]
            for name, runner in services.runners.items()
        }
        snapshots = services.store.catalogue.latest_inventory()
    except AuthenticationError:
        raise
    except (KinstaError, StoreError) as exc:
        return {}, None, str(exc)
    finally:
        services.close()
    installed: dict[str, set[str]] | None = None
    if snapshots:
        installed = {
            "plugins": {str(p["name"]) for s in snapshots for p in s.plugins},
            "themes": {str(t["name"]) for s in snapshots for t in s.themes},
        }
    return sites, installed, None
