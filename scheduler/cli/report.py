"""report: a client report of a period (updates, backups, verifications, rollbacks, versions),
as HTML, PDF or JSON (scheduler.reports)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from scheduler import render
from scheduler.branding import ReportBranding
from scheduler.cli.base import State, cli, history_store, sandbox_flag
from scheduler.domain import Config
from scheduler.errors import BadInputError
from scheduler.reporting import choose_period

FORMATS = ("html", "pdf", "json")


@cli.command()
@click.option("--site", "sites", multiple=True, metavar="SITE", help="a site (or pattern); repeat")
@click.option("--label", help="only sites whose Kinsta listing carries this label")
@click.option("--company", help="only the work of this company's jobs")
@click.option("--since", help="a length up to now: 30d, 2w, 48h")
@click.option("--month", help="a calendar month in jobs.yaml's timezone: 2026-11")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="html", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), help="write here (pdf: required)")
@sandbox_flag
@click.pass_obj
def report(
    state: State,
    sites: tuple[str, ...],
    label: str | None,
    company: str | None,
    since: str | None,
    month: str | None,
    fmt: str,
    out: Path | None,
    sandbox: bool,
) -> None:
    """A client report of a period: per site the updates (versions before and after), backups,
    verifications and their checks, rollbacks and releases held back with the reason, PHP and
    WordPress at the start and end; a fleet summary and charts on top."""
    from scheduler.reports import gather, render_html, to_document
    from scheduler.reports.selection import company_jobs, resolve_sites, selection, with_label

    config = state.load(sandbox=sandbox) if state.path.exists() else None
    now = datetime.now(UTC)
    period = choose_period(since, month, now, ZoneInfo(config.timezone) if config else UTC)
    if fmt == "pdf" and out is None:
        raise BadInputError("--format pdf writes a binary file: give --out FILE")
    if out is not None:
        check_writable(out)
    jobs = company_jobs(config, company)
    store = history_store(state)
    chosen = resolve_sites(sites, store.reports.known_sites()) if sites else None
    if label is not None:
        chosen = with_label(chosen, label, _labels(config, sandbox=sandbox))
    asked = {"sites": list(sites), "label": label, "company": company}
    keys = _company_keys(config, company, sandbox=sandbox) if config and company else None
    branding = config.report if config else ReportBranding()
    built = gather(store, period, selection(chosen, jobs, asked, keys), branding, now)
    if fmt == "json":
        emit((render.to_json(to_document(built)) + "\n").encode(), out)
        return
    html = render_html(built)
    if fmt == "html":
        emit(html.encode(), out)
        return
    from scheduler.reports.pdf import render_pdf

    emit(render_pdf(html), out)


def _company_keys(config: Config, company: str, *, sandbox: bool) -> dict[str, str]:
    """The company's name -> its key's fingerprint: its request budget is counted by it."""
    from scheduler.bootstrap import key_scopes

    scope = key_scopes(config, sandbox=sandbox).get(company)
    if scope is None:
        raise BadInputError(
            f"--company {company}: its API key is not set, so its requests cannot be told from "
            "other companies' (set the key jobs.yaml names for it, or use --sandbox)"
        )
    return {company: scope}


def _labels(config: Config | None, *, sandbox: bool) -> dict[str, Collection[str]]:
    """Every company's sites and their labels, from Kinsta's live site list."""
    if config is None:
        raise BadInputError("--label needs jobs.yaml (the Kinsta key that lists the sites)")
    from scheduler.bootstrap import open_services

    services = open_services(config, sandbox=sandbox)
    try:
        return {
            site.name: [label.name for label in site.labels]
            for runner in services.runners.values()
            for site in runner.client.sites.list(runner.company_id)
        }
    finally:
        services.close()


def check_writable(out: Path) -> None:
    """--out names a file this process may write (checked before the report is made)."""
    if out.is_dir():
        raise BadInputError(f"--out {out}: is a directory")
    folder = out.parent if str(out.parent) else Path()
    if not folder.is_dir():
        raise BadInputError(f"--out {out}: no directory {folder}")
    if not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise BadInputError(f"--out {out}: not writable")


def emit(data: bytes, out: Path | None) -> None:
    """To stdout, or to `out` whole (a temporary file beside it, renamed over it)."""
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    except OSError as exc:
        raise BadInputError(f"--out {out}: cannot write ({exc.strerror or exc})") from exc
    try:
        os.fchmod(handle, 0o644)  # a report is for reading: not mkstemp's 0600
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise BadInputError(f"--out {out}: cannot write ({exc.strerror or exc})") from exc
    click.echo(f"wrote {out} ({len(data):,} bytes)", err=True)
