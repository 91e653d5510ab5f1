"""quarantine: plugin and theme versions no update takes (list, add, release)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from scheduler import render
from scheduler.cli.base import State, cli, history_store, make_console
from scheduler.errors import BadInputError, NotFoundError
from scheduler.views.documents import entry_json

if TYPE_CHECKING:
    from scheduler.ports import QuarantineEntry

KINDS = {"plugin": "plugins", "theme": "themes"}
# A plugin or theme's slug as Kinsta names it, and a version: what the history's columns hold.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
REASON_MAX = 1000


@cli.group()
def quarantine() -> None:
    """Plugin and theme versions no update takes: a safe update of them was rolled back, or an
    operator named them; until a newer version is offered or an operator releases them."""


@quarantine.command("list")
@click.option("--all", "everything", is_flag=True, help="released versions too")
@click.option(
    "--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True
)
@click.pass_obj
def quarantine_list(state: State, everything: bool, fmt: str) -> None:
    """The quarantined versions, with the evidence: where each was rolled back, which check
    failed, the run and task, when (with --all, the released ones too)."""
    entries = history_store(state).quarantine.entries(released=everything)
    if fmt == "json":
        click.echo(render.to_json([entry_json(e) for e in entries]))
    else:
        entries_table(entries, make_console())


@quarantine.command("release")
@click.argument("name")
@click.argument("version", required=False)
@click.pass_obj
def quarantine_release(state: State, name: str, version: str | None) -> None:
    """Let updates take NAME again: its quarantined versions (only VERSION, if given)."""
    _check(name, version)
    released = history_store(state).quarantine.release(name, version, datetime.now(UTC))
    if not released:
        what = f"{name} {version}" if version else name
        raise NotFoundError(f"nothing quarantined as {what} (see quarantine list)")
    for entry in released:
        click.echo(f"released {entry.kind} {entry.name} {entry.version}")


@quarantine.command("add")
@click.argument("name")
@click.argument("version")
@click.option("--reason", required=True, help="why no update may take it (recorded)")
@click.option("--kind", type=click.Choice(tuple(KINDS)), default="plugin", show_default=True)
@click.pass_obj
def quarantine_add(state: State, name: str, version: str, reason: str, kind: str) -> None:
    """Quarantine VERSION of the plugin (or --kind theme) NAME by hand, before any site breaks
    (a vendor's advisory): no update takes it until a newer version or a release."""
    from scheduler.ports import QUARANTINED_BY_OPERATOR, QuarantineEntry

    _check(name, version)
    reason = reason.strip()
    if not reason or len(reason) > REASON_MAX or not reason.isprintable():
        raise BadInputError(f"--reason: one line of 1 to {REASON_MAX} printable characters")
    entry = QuarantineEntry(
        KINDS[kind], name, version, reason, datetime.now(UTC), QUARANTINED_BY_OPERATOR, rollbacks=0
    )
    stored = history_store(state).quarantine.add(entry)
    note = "" if stored.added_by == QUARANTINED_BY_OPERATOR else " (already, by a rollback)"
    click.echo(f"quarantined {stored.kind} {stored.name} {stored.version}{note}")


def _check(name: str, version: str | None) -> None:
    if not NAME.match(name):
        raise BadInputError(
            f"NAME {_shown(name)}: a plugin or theme's slug (letters, digits, . _ -), as `sites` "
            "lists it"
        )
    if version is not None and not VERSION.match(version):
        raise BadInputError(f"VERSION {_shown(version)}: a version such as 3.2.1")


def _shown(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def entries_table(entries: Sequence[QuarantineEntry], console: Console) -> None:
    table = Table(title=f"{len(entries)} quarantined version(s)", title_justify="left")
    for column in ("kind", "name", "version", "since", "evidence", "reason"):
        table.add_column(column, no_wrap=column not in ("evidence", "reason"))
    for e in entries:
        if e.site is None:
            evidence = e.added_by
        else:
            evidence = f"{e.site}/{e.environment}, run {e.run_id}, task {e.task_id}"
        if e.rollbacks > 1:
            evidence += f" ({e.rollbacks} rollbacks)"
        if not e.active:
            evidence += f"; released {render.local(e.released_at)}"
        table.add_row(e.kind, e.name, e.version, render.local(e.added_at), evidence, e.reason)
    console.print(table)
