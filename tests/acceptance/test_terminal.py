"""The real CLI: shell completion of job ids (bash, as `eval "$(_KINSTA_SCHEDULER_COMPLETE=
bash_source kinsta-scheduler)"` installs it) and did-you-mean for a mistyped job id."""

from __future__ import annotations

from tests.acceptance.conftest import Cli
from tests.unit.test_terminal import JOBS


def test_bash_completes_job_ids_and_trigger_suggests_the_close_ones(cli: Cli) -> None:
    (cli.cwd / "jobs.yaml").write_text(JOBS)
    source = Cli(cli.cwd, {**cli.env, "_KINSTA_SCHEDULER_COMPLETE": "bash_source"})()
    assert source.code == 0 and "complete -o nosort -F" in source.out
    words = "kinsta-scheduler trigger nig"
    env = {**cli.env, "_KINSTA_SCHEDULER_COMPLETE": "bash_complete", "COMP_WORDS": words}
    done = Cli(cli.cwd, {**env, "COMP_CWORD": "2"})()
    assert done.out.split() == ["plain,nightly-backups", "plain,night-cache"]
    wrong = cli("trigger", "--sandbox", "nightly-backup")
    assert wrong.code == 2 and "Traceback" not in wrong.err
    assert "did you mean 'nightly-backups' or 'night-cache'?" in wrong.err
