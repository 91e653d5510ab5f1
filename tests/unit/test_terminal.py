"""A terminal that stays readable: tables as wide as the terminal (or unwrapped with no terminal
or --wide), did-you-mean for a mistyped job id, and shell completion of job ids from jobs.yaml."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from scheduler.cli.base import WIDE, cli, complete_job_id, console_width, did_you_mean

JOBS = """version: 1
jobs:
  - id: nightly-backups
    schedule: {cron: "0 3 * * *"}
    actions: [backup]
  - id: night-cache
    schedule: {cron: "0 4 * * *"}
    actions: [clear_cache]
  - id: weekly-updates
    schedule: {cron: "0 5 * * 1"}
    actions: [update_plugins]
"""


def test_tables_fit_the_terminal_unless_there_is_none_or_wide_is_asked() -> None:
    assert console_width(wide=False, stdout_tty=True, env={}) is None  # rich asks the terminal
    assert console_width(wide=True, stdout_tty=True, env={}) == WIDE
    # No terminal anywhere (pytest's streams): a file or CI gets rows on one line each,
    # unless $COLUMNS says otherwise.
    assert console_width(wide=False, stdout_tty=False, env={}) == WIDE
    assert console_width(wide=False, stdout_tty=False, env={"COLUMNS": "90"}) == 90
    assert console_width(wide=False, stdout_tty=False, env={"COLUMNS": "x"}) == WIDE


def test_did_you_mean_names_the_close_job_ids() -> None:
    known = ["nightly-backups", "night-cache", "weekly-updates"]
    assert did_you_mean("nightly-backup", known) == (
        "; did you mean 'nightly-backups' or 'night-cache'?"
    )
    assert did_you_mean("weekly", known) == "; did you mean 'weekly-updates'?"
    assert did_you_mean("zzz", known) == ""


def _complete(tmp_path: Path, config: Path | None, incomplete: str) -> list[str]:
    args = ["--config", str(config)] if config else []
    context = cli.make_context("kinsta-scheduler", args, resilient_parsing=True)
    return complete_job_id(context, click.Argument(["job_id"]), incomplete)


def test_job_ids_complete_from_jobs_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(JOBS)
    assert _complete(tmp_path, jobs, "nig") == ["nightly-backups", "night-cache"]
    assert _complete(tmp_path, jobs, "") == ["nightly-backups", "night-cache", "weekly-updates"]
    monkeypatch.chdir(tmp_path)  # ./jobs.yaml by default
    assert _complete(tmp_path, None, "w") == ["weekly-updates"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("jobs: [unclosed\n")
    assert _complete(tmp_path, broken, "") == []  # completion never fails the shell
    assert _complete(tmp_path, tmp_path / "missing.yaml", "") == []
