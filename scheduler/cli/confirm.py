"""Confirmations before commands that cannot be taken back: on a terminal, show what will be
touched and ask; `--yes` skips the question; without a terminal and without `--yes`, refuse
(exit 2) so that a script never does it by accident."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from scheduler.errors import BadInputError

SHOWN = 20  # the touched things listed before "... and N more"

yes_flag = click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")


def confirm(what: str, touched: Sequence[str], *, yes: bool) -> None:
    """Ask before `what` (e.g. "run restore_backup on 12 environment(s)"), listing `touched`.
    Raises BadInputError (exit 2) when refused or when no terminal can answer."""
    if yes:
        return
    if not sys.stdin.isatty():
        named = "; ".join(touched[:3]) + (f"; and {len(touched) - 3} more" if touched[3:] else "")
        raise BadInputError(
            f"{what} ({named}): this cannot be undone; confirm with --yes (no terminal to ask)"
        )
    lines = [f"This will {what}:"]
    lines += [f"  {name}" for name in touched[:SHOWN]]
    if len(touched) > SHOWN:
        lines.append(f"  ... and {len(touched) - SHOWN} more")
    click.echo("\n".join(lines), err=True)
    if not click.confirm("Go on?", default=False, err=True):
        raise BadInputError(f"{what}: not confirmed; nothing was done")
