"""jobs.yaml for editors and CI, through the real CLI: `schema` prints the schema that takes
the example and rejects a broken file, `validate` reports every problem in one pass,
`validate --offline` needs no key and leaves no file, online it finds an environment no site
has."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from jsonschema import Draft7Validator

from tests.acceptance.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]

MANY_PROBLEMS = """version: 1
retention: {older_than: 6m}
jobs:
  - id: a
    schedule: {cron: "0 3 * * *"}
    actions: [clear_cache]
    bogus: 1
  - id: a
    schedule: {cron: "0 3 * * *", every: 1h}
    actions: [clear_cache]
  - id: never
    schedule: {cron: "0 0 30 2 *"}
    actions: [{prune_backups: {keep: -1}}]
"""

GOOD = """version: 1
kinsta:
  companies:
    - {name: agency, api_key: "${AGENCY_KEY:-}"}
jobs:
  - id: typo
    company: agency
    schedule: {cron: "0 3 * * *"}
    targets: {environment: lve}
    actions: [clear_cache]
"""


def files_in(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_validate_reports_every_problem_in_one_pass_and_exits_2(cli: Cli) -> None:
    (cli.cwd / "jobs.yaml").write_text(MANY_PROBLEMS)
    for args in (("validate", "--offline"), ("validate",)):
        result = cli(*args)
        assert result.code == 2, result
        assert "Traceback" not in result.err and result.out == ""
        lines = result.err.strip().splitlines()
        assert lines[0].startswith("jobs.yaml:2: retention.older_than: must be at least 1d: '6m'")
        assert lines[1:5] == [
            "jobs.yaml:7: job 'a': bogus: unknown key",
            "jobs.yaml:8: job 'a': id: duplicate job id (first at job #1)",
            "jobs.yaml:9: job 'a': schedule: give exactly one of cron or every",
            "jobs.yaml:12: job 'never': schedule: cron expression '0 0 30 2 *' never fires "
            "(no such date)",
        ]
        assert lines[5].startswith("jobs.yaml:13: job 'never': actions.0.prune_backups.keep: ")
    # Online, the missing key is one more problem of the same list, not a stop before it.
    assert "no API key: set KINSTA_API_KEY" in result.err and len(lines) == 7


def test_validate_offline_needs_no_key_and_leaves_no_file(cli: Cli) -> None:
    assert "KINSTA_API_KEY" not in cli.env and "AGENCY_KEY" not in cli.env
    (cli.cwd / "jobs.yaml").write_text(GOOD)
    before = files_in(cli.cwd)
    result = cli("validate", "--offline")
    assert result.code == 0, result
    assert result.out.startswith("jobs.yaml: ok (1 job(s), 1 scheduled, revision ")
    assert result.err.strip() == (
        "note: jobs.yaml: job 'typo': targets.environment 'lve' is an environment's name, "
        "checked against the site list only online (did you mean 'live'?)"
    )
    assert files_in(cli.cwd) == before  # no history database, no journal, nothing
    online = cli("validate")
    assert online.code == 2 and "company 'agency' has no api_key" in online.err
    assert files_in(cli.cwd) == before


def test_validate_online_finds_an_environment_no_site_has(cli: Cli) -> None:
    (cli.cwd / "jobs.yaml").write_text(
        GOOD + "  - {id: fine, company: agency, targets: {environment: staging}, "
        "actions: [clear_cache]}\n"
    )
    result = cli("validate", "--sandbox")
    assert result.code == 2, result
    assert result.err.strip().splitlines()[-1] == (
        "jobs.yaml:9: job 'typo': targets.environment: no site has an environment named 'lve' "
        "(did you mean 'live'?): the job would find no target"
    )
    assert "Traceback" not in result.err and result.out == ""
    (cli.cwd / "jobs.yaml").write_text(GOOD.replace("lve", "live"))
    assert cli("validate", "--sandbox").code == 0


def test_schema_takes_the_example_and_rejects_a_broken_file(cli: Cli) -> None:
    result = cli("schema")
    assert result.code == 0 and result.err == "", result
    schema = json.loads(result.out)
    assert schema == json.loads((ROOT / "jobs.schema.json").read_text())
    validator = Draft7Validator(schema)
    example = yaml.safe_load((ROOT / "jobs.yaml").read_text())
    assert list(validator.iter_errors(example)) == []
    broken = yaml.safe_load(
        "version: 1\njobs:\n  - id: a\n    actions: [clear_cach, {backup: {tags: x}}]\n"
        "    concurrency: many\n    frobnicate: false\n"
    )
    errors = {".".join(map(str, e.absolute_path)): e.message for e in validator.iter_errors(broken)}
    assert set(errors) == {"jobs.0", "jobs.0.actions.0", "jobs.0.actions.1", "jobs.0.concurrency"}
    assert "'frobnicate' was unexpected" in errors["jobs.0"]
