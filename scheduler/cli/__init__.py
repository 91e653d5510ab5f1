"""The command line, one small module per command group; each command parses, calls bootstrap,
then one function, and renders. Exit codes are decided in `main` only: 0 ok; 1 a run failed;
2 bad configuration or input."""

from __future__ import annotations

import sys

import click

from scheduler import logs
from scheduler.cli import (
    backfill,
    cancel,
    db,
    history,
    pause,
    plan,
    quarantine,
    report,
    run,
    sandbox,
    schema,
    show,
    trigger,
    validate,
)
from scheduler.cli.base import cli, fail
from scheduler.errors import (
    AuthenticationError,
    BadInputError,
    ConfigError,
    KinstaError,
    SchedulerError,
    StoreError,
)

__all__ = [
    "backfill",
    "cancel",
    "cli",
    "db",
    "history",
    "main",
    "pause",
    "plan",
    "quarantine",
    "report",
    "run",
    "sandbox",
    "schema",
    "show",
    "trigger",
    "validate",
]


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
        fail("aborted", 1)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(logs.mask(str(problem)), err=True)
        sys.exit(2)
    except (BadInputError, StoreError, AuthenticationError) as exc:
        fail(str(exc))
    except KinstaError as exc:
        fail(f"Kinsta API: {exc}", 1)
    except SchedulerError as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:  # a bug: still no traceback for the user, but say so plainly
        fail(f"internal error ({type(exc).__name__}): {exc}; rerun with --log-level debug", 70)
