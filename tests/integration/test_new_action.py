"""Adding an action is one module and one catalogue line: a throwaway action, registered in this
test only, is accepted by jobs.yaml validation, estimated by `plan` and run by the runner against
the sandbox, with nothing else taught about it."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner, Result
from pydantic import Field

from scheduler.actions import (
    ActionContext,
    ActionResult,
    Options,
    Repeat,
    define,
    outcome,
    registry,
)
from scheduler.actions.catalogue import CATALOGUE
from scheduler.cli import cli
from scheduler.clock import SystemClock
from scheduler.config import parse
from scheduler.domain import RateLimits, RunStatus, RunTrigger, Secret, Target, TaskStatus
from scheduler.errors import ConfigError
from scheduler.history import HistoryStore
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.planning import POLLS_PER_OPERATION
from scheduler.runner import Runner
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from tests.integration.test_runner import FAST

# --- the new action: what its module would hold ------------------------------------------------


class ShoutOptions(Options):
    word: str = Field(min_length=1)
    times: int = Field(1, ge=1, le=3)


def shout(ctx: ActionContext, target: Target, options: ShoutOptions) -> ActionResult:
    """Clear the page cache, and say the word (the options arrive typed, defaults applied)."""
    result = outcome(*ctx.wait(ctx.client.tools.clear_cache(target.environment_id)))
    if result.status is not TaskStatus.SUCCEEDED:
        return result
    return ActionResult(result.status, " ".join([options.word] * options.times))


SHOUT = define(
    "shout",
    shout,
    ShoutOptions,
    one_operation=True,
    repeat=Repeat.ALWAYS,
    requests=1.0,  # the clear_cache call; its operation's polls are `plan`'s to expect
    operations=1.0,
    typical_s=42.0,
)

# --- and its one catalogue line, for this test only -------------------------------------------


@pytest.fixture
def with_shout() -> Iterator[None]:
    with CATALOGUE.registered(SHOUT):
        yield
    assert "shout" not in registry()


JOBS = """version: 1
kinsta:
  polling: {first_poll: 0.03s, max_interval: 0.1s}
jobs:
  - id: loud
    schedule: {cron: "0 3 * * *"}
    actions:
      - shout: {word: hey, times: 2}
"""


def test_config_validates_the_new_actions_options(with_shout: None) -> None:
    (job,) = parse(JOBS, "jobs.yaml", {}).jobs
    (spec,) = job.actions
    assert spec.name == "shout" and spec.options == ShoutOptions(word="hey", times=2)
    with pytest.raises(ConfigError) as caught:
        parse(JOBS.replace("{word: hey, times: 2}", "{times: 9}"), "jobs.yaml", {})
    assert [str(p) for p in caught.value.problems] == [
        "jobs.yaml:8: job 'loud': actions.0.shout.word: Field required",
        "jobs.yaml:8: job 'loud': actions.0.shout.times: Input should be less than or equal to 3",
    ]


def test_without_its_catalogue_line_the_action_is_unknown() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(JOBS, "jobs.yaml", {})
    (problem,) = caught.value.problems
    assert "unknown action 'shout'" in str(problem)


def _invoke(args: list[str], env: dict[str, str]) -> Result:
    """The CLI in this process (so that it sees the registered action), leaving logging as it
    was: the CLI points the root handler at a stderr that CliRunner closes afterwards."""
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    try:
        return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**config)


def test_plan_estimates_it_from_its_declaration(
    with_shout: None, sandbox: SandboxServer, tmp_path: Path
) -> None:
    (tmp_path / "jobs.yaml").write_text(JOBS)
    env = {"KINSTA_API_URL": sandbox.url, "KINSTA_API_KEY": DEFAULT_API_KEY}
    args = ["--config", str(tmp_path / "jobs.yaml"), "plan", "--format", "json", "--count", "1"]
    result = _invoke(args, env)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    live = [e for s in sandbox.sandbox.fleet.sites for e in s.environments if e.name == "live"]
    assert row["targets"] == len(live)
    # The site list, then per target its call and the polls expected of its operation (no
    # history yet: the prior).
    per_target = 1.0 + POLLS_PER_OPERATION
    assert row["requests"] == 1 + math.ceil(per_target * len(live))
    assert row["operations"] == len(live)
    # concurrency: auto, and far fewer requests than a window allows: one chain, typical_s.
    assert row["duration_minutes"] == pytest.approx(42.0 / 60)
    (tmp_path / "jobs.yaml").write_text(
        JOBS.replace("    actions:", "    concurrency: 2\n    actions:")
    )
    capped = _invoke(args, env)
    assert capped.exit_code == 0, capped.output
    (row,) = json.loads(capped.stdout)
    assert row["duration_minutes"] == pytest.approx(-(-len(live) // 2) * 42.0 / 60)  # waves of 2


def test_the_runner_runs_it_with_typed_options(
    with_shout: None, sandbox: SandboxServer, store: HistoryStore
) -> None:
    (job,) = parse(JOBS, "jobs.yaml", {}).jobs
    clock = SystemClock()
    client = KinstaClient(
        sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
    )
    try:
        runner = Runner(
            client, store, clock, FAST, sandbox.sandbox.fleet.company_id, started_by="test"
        )
        run = runner.run(job, RunTrigger.MANUAL, datetime.now(UTC))
    finally:
        client.close()
    assert run is not None and run.status is RunStatus.SUCCEEDED
    tasks = store.tasks.run_tasks(run.run_id)
    assert tasks and {(t.action, t.status, t.message) for t in tasks} == {
        ("shout", TaskStatus.SUCCEEDED, "hey hey")
    }
    assert all(len(t.operations) == 1 for t in tasks)
