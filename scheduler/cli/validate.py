"""validate: check jobs.yaml and the environment (online: the targets too)."""

from __future__ import annotations

import click

from scheduler import logs
from scheduler.cli.base import State, cli, sandbox_flag
from scheduler.domain import Config
from scheduler.errors import AuthenticationError, KinstaError, SchedulerError, StoreError


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
    from scheduler.bootstrap import open_services
    from scheduler.planning import target_warnings

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
                for s in runner.client.sites.list(runner.company_id)
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
