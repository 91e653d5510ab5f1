"""Fast at fleet scale by default: a job that sets no `concurrency` (auto) finishes the same
night much sooner than the same job capped at four targets, through the real CLI."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from tests.acceptance.conftest import SANDBOX_KEY, Cli, runs, serve

SITES = 10
JOBS = """version: 1
kinsta:
  rate_limits: {{per_minute: 600}}  # the sandbox's too (conftest): no night here is rate-bound
  polling: {{first_poll: 0.05s, max_interval: 0.25s, not_found_grace: 5s, deadline: 2m}}
jobs:
  - id: night
    targets: {{environment: all}}
    actions: [backup, update_plugins, clear_cache]
{concurrency}"""


def night(cli: Cli, workdir: Path, concurrency: str) -> tuple[float, dict[str, int]]:
    """Trigger the night on a fresh sandbox (the same fleet each time) and a fresh history:
    (the run's length in seconds, its tasks by status)."""
    workdir.mkdir()
    own = replace(cli, cwd=workdir, env=dict(cli.env))
    (workdir / "jobs.yaml").write_text(JOBS.format(concurrency=concurrency))
    with contextmanager(serve)(own, 0.005, SITES, 5) as sandbox:  # a backup takes ~0.6 s
        own.env.update(KINSTA_API_URL=sandbox.url, KINSTA_API_KEY=SANDBOX_KEY)
        own.env["KINSTA_SCHEDULER_DATABASE_URL"] = f"sqlite:///{workdir / 'history.db'}"
        assert own("db", "upgrade").code == 0
        result = own("trigger", "night", timeout=240)
        assert result.code == 0, result.err[-3000:]
        (run,) = runs(own)
    started, finished = (datetime.fromisoformat(run[k]) for k in ("started_at", "finished_at"))
    tasks = own("show", str(run["run_id"]), "--format", "json").json()["tasks"]
    statuses: dict[str, int] = {}
    for task in tasks:
        statuses[task["status"]] = statuses.get(task["status"], 0) + 1
    return (finished - started).total_seconds(), statuses


def test_auto_concurrency_beats_a_cap_of_four_by_a_clear_margin(cli: Cli) -> None:
    auto_s, auto_tasks = night(cli, cli.cwd / "auto", "")
    four_s, four_tasks = night(cli, cli.cwd / "four", "    concurrency: 4\n")
    assert auto_tasks == four_tasks  # the same work, all of it done
    assert set(auto_tasks) <= {"succeeded", "skipped"}, auto_tasks
    assert auto_s < 0.5 * four_s, (auto_s, four_s)
