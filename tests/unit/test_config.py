"""jobs.yaml validation: every problem at once, each with file, line, job id and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.config import ACTION_OPTIONS, load, parse, parse_duration
from scheduler.domain import CronSchedule, IntervalSchedule
from scheduler.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def problems(
    text: str, env: dict[str, str] | None = None, *, require_api_key: bool = False
) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, "jobs.yaml", env or {}, require_api_key=require_api_key)
    return [str(p) for p in caught.value.problems]


def test_the_example_file_is_valid() -> None:
    config = load(ROOT / "jobs.yaml", {})
    assert {j.id for j in config.jobs} >= {"nightly-cache-clear", "demo-cache-clear"}
    nightly = config.job("nightly-cache-clear")
    assert nightly is not None and nightly.schedule == CronSchedule(
        "30 2 * * *", "Europe/Amsterdam"
    )
    assert config.database_url == f"sqlite:///{ROOT / 'kinsta-scheduler.db'}"


def test_every_problem_is_reported_at_once_with_lines() -> None:
    text = """version: 1
timezone: Mars/Base
kinsta:
  bogus: 1
jobs:
  - id: a
    schedule: {cron: "61 * * * *"}
    actions: [clear_cache, frobnicate]
  - id: a
    actions: [clear_cache]
  - id: b
    schedule: {every: 6h, timezone: UTC}
    actions: [clear_cache]
"""
    found = problems(text)
    assert found == [
        "jobs.yaml:2: timezone: unknown time zone 'Mars/Base'",
        "jobs.yaml:4: kinsta.bogus: unknown key",
        "jobs.yaml:7: job 'a': schedule: invalid cron expression '61 * * * *': Error validating "
        "expression '61': the last value (61) is higher than the maximum value (59)",
        "jobs.yaml:8: job 'a': actions.1: unknown action 'frobnicate' (known: "
        + ", ".join(sorted(ACTION_OPTIONS))
        + ")",
        "jobs.yaml:9: job 'a': id: duplicate job id (first at job #1)",
        "jobs.yaml:12: job 'b': schedule: timezone applies to cron schedules only",
    ]


def test_malformed_yaml_names_the_line() -> None:
    (found,) = problems("version: 1\njobs:\n  - id: x\n    actions: [clear_cache\n")
    # libyaml and the pure-Python parser word it differently; both name the line
    assert found.startswith("jobs.yaml:5: invalid YAML: ") and "',' or ']'" in found


def test_duplicate_yaml_keys_are_an_error() -> None:
    found = problems("version: 1\njobs: []\njobs: []\n")
    assert found == ["jobs.yaml:3: duplicate key 'jobs'"]


def test_unset_variable_names_the_variable_and_line() -> None:
    found = problems("version: 1\nkinsta:\n  api_key: ${KINSTA_API_KEY}\n")
    assert found == [
        "jobs.yaml:3: kinsta.api_key: environment variable KINSTA_API_KEY is not set (in ${KINSTA_API_KEY})"
    ]


def test_variables_are_interpolated_and_environment_wins() -> None:
    text = "version: 1\nkinsta:\n  api_key: ${MY_KEY}\n  company_id: ${CO:-abc}\n"
    config = parse(text, "jobs.yaml", {"MY_KEY": "k-123"})
    assert config.kinsta.api_key is not None and config.kinsta.api_key.reveal() == "k-123"
    assert config.kinsta.company_id == "abc"
    config = parse(
        text,
        "jobs.yaml",
        {"MY_KEY": "k-123", "KINSTA_API_KEY": "env-key", "KINSTA_COMPANY_ID": "c1"},
    )
    assert config.kinsta.api_key is not None and config.kinsta.api_key.reveal() == "env-key"
    assert config.kinsta.company_id == "c1"
    assert "env-key" not in repr(config)


def test_missing_api_key_is_reported_when_required() -> None:
    assert problems("version: 1\n", require_api_key=True) == [
        "jobs.yaml: kinsta: no API key: set KINSTA_API_KEY (or use --sandbox)"
    ]


def test_wrong_types_and_unknown_options() -> None:
    text = """version: 1
jobs:
  - id: x
    actions: [{clear_cache: {force: true}}]
    concurrency: many
"""
    assert problems(text) == [
        "jobs.yaml:5: job 'x': concurrency: Input should be a valid integer, unable to parse string as an integer"
    ]


def test_unknown_action_option_is_named() -> None:
    text = "version: 1\njobs:\n  - id: x\n    actions: [{clear_cache: {force: true}}]\n"
    assert problems(text) == ["jobs.yaml:4: job 'x': actions.0.clear_cache.force: unknown key"]


def test_wrong_version_and_not_a_mapping() -> None:
    assert problems("version: 2\n") == ["jobs.yaml:1: version: unsupported version; expected 1"]
    assert problems("- 1\n") == [
        "jobs.yaml:1: the file must be a mapping with at least 'version: 1'"
    ]


def test_interval_and_jitter() -> None:
    config = parse(
        "version: 1\njobs:\n  - id: x\n    schedule: {every: 6h, jitter: 5m}\n    actions: [clear_cache]\n",
        "j.yaml",
        {},
    )
    assert config.jobs[0].schedule == IntervalSchedule(every_s=21600, jitter_s=300)
    found = problems(
        "version: 1\njobs:\n  - id: x\n    schedule: {every: 30s, jitter: 1m}\n    actions: [clear_cache]\n"
    )
    assert found == ["jobs.yaml:4: job 'x': schedule: jitter must be shorter than the interval"]


def test_database_precedence(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text("version: 1\ndatabase: sqlite:///data/h.db\n")
    assert load(path, {}).database_url == f"sqlite:///{tmp_path / 'data' / 'h.db'}"
    env = {"KINSTA_SCHEDULER_DATABASE_URL": "postgresql://u@h/db"}
    assert load(path, env).database_url == "postgresql://u@h/db"
    assert load(path, env, database_override="sqlite:////x.db").database_url == "sqlite:////x.db"


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load(Path("nope.yaml"), {})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("6h", 21600), ("3d", 259200), (90, 90), ("250ms", 0.25)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


SEVERAL = """version: 1
kinsta:
  companies:
    - {name: agency, api_key: "${AGENCY_KEY}"}
    - {name: client-b, api_key: "${B_KEY}", company_id: c-b}
jobs:
  - id: a
    company: agency
    actions: [clear_cache]
  - id: b
    company: client-b
    actions: [clear_cache]
"""


def test_several_companies_each_with_its_own_key() -> None:
    config = parse(
        SEVERAL, "jobs.yaml", {"AGENCY_KEY": "ka", "B_KEY": "kb", "KINSTA_API_KEY": "ignored"}
    )
    companies = config.kinsta.all_companies()
    assert [
        (c.name, c.api_key.reveal() if c.api_key else None, c.company_id) for c in companies
    ] == [
        ("agency", "ka", None),
        ("client-b", "kb", "c-b"),
    ]
    assert [j.company for j in config.jobs] == ["agency", "client-b"]


def test_jobs_must_name_one_of_several_companies() -> None:
    text = SEVERAL.replace("    company: agency\n", "").replace(
        "company: client-b", "company: nobody"
    )
    found = problems(text, {"AGENCY_KEY": "ka", "B_KEY": "kb"})
    assert found == [
        "jobs.yaml:7: job 'a': several companies are listed: name one with company: (agency, client-b)",
        "jobs.yaml:10: job 'b': company: unknown company 'nobody' (known: agency, client-b)",
    ]


def test_a_company_without_a_key() -> None:
    text = "version: 1\nkinsta:\n  companies:\n    - {name: only}\njobs:\n  - id: a\n    actions: [clear_cache]\n"
    assert problems(text, require_api_key=True) == [
        "jobs.yaml:4: kinsta.companies.0: company 'only' has no api_key"
    ]
    config = parse(text, "jobs.yaml", {})
    assert config.jobs[0].company == "only"  # the one company is the default


def test_one_company_from_the_environment_is_called_default() -> None:
    config = parse(
        "version: 1\njobs:\n  - id: a\n    actions: [clear_cache]\n",
        "jobs.yaml",
        {"KINSTA_API_KEY": "k"},
    )
    assert [c.name for c in config.kinsta.all_companies()] == ["default"]
    assert config.jobs[0].company == "default"


def test_creation_endpoints_are_configurable() -> None:
    text = "version: 1\nkinsta:\n  rate_limits:\n    creation_endpoints: ['POST /sites', 'POST /sites/{site_id}/environments']\n"
    assert parse(text, "jobs.yaml", {}).kinsta.rate_limits.creation_endpoints == (
        "POST /sites",
        "POST /sites/{site_id}/environments",
    )
    bad = problems(
        "version: 1\nkinsta:\n  rate_limits:\n    creation_endpoints: ['create sites']\n"
    )
    assert bad == [
        "jobs.yaml:4: kinsta.rate_limits.creation_endpoints: 'create sites' is not 'METHOD /path' "
        "(for example 'POST /sites/{site_id}/environments')"
    ]


def test_every_action_jobs_yaml_accepts_can_run() -> None:
    from scheduler.actions import registry
    from scheduler.config import ACTION_OPTIONS

    assert set(ACTION_OPTIONS) == set(registry())


def test_set_php_version_needs_a_version() -> None:
    text = "version: 1\njobs:\n  - id: x\n    actions: [{set_php_version: {version: eight}}]\n"
    assert problems(text) == [
        "jobs.yaml:4: job 'x': actions.0.set_php_version.version: String should match pattern '^\\d+\\.\\d+$'"
    ]


def test_every_action_of_the_catalogue_parses_with_its_options() -> None:
    from scheduler.actions import registry

    assert set(registry()) == set(ACTION_OPTIONS)
    config = parse(
        """version: 1
jobs:
  - id: nightly
    schedule: {cron: "0 3 * * 0"}
    actions:
      - backup: {tag: weekly}
      - update_plugins: {exclude: [woocommerce], only: minor, min_age: 3d, safe: true,
                         verify: {paths: [/, /shop/], contains: "</html>"}}
      - update_themes
      - clear_cache
      - clear_edge_cache
      - clear_cdn_cache
      - fetch_logs: {file: access, lines: 50}
      - inventory
      - prune_backups: {keep: 3}
  - id: release
    targets: {environment: staging}
    actions: [push_to_live]
""",
        "jobs.yaml",
        {},
    )
    options = {a.name: a.options for a in config.jobs[0].actions}
    assert options["update_plugins"]["min_age"] == 3 * 86400
    assert options["update_plugins"]["verify"]["paths"] == ("/", "/shop/")
    assert options["update_themes"]["only"] == "all" and options["prune_backups"]["keep"] == 3


def test_bad_action_options_name_the_field() -> None:
    found = problems(
        """version: 1
jobs:
  - id: a
    schedule: {every: 1h}
    actions:
      - prune_backups: {keep: many}
      - update_plugins: {only: sometimes, min_age: soon}
      - restore_backup
      - create_site: {display_name: X, region: r, admin_email: a@b.c, admin_user: u,
                      admin_password: pw}
      - clear_cahce
"""
    )
    text = "\n".join(found)
    assert "actions.0.prune_backups.keep" in text
    assert "actions.1.update_plugins.only" in text and "min_age" in text
    assert "actions.2: restore_backup is an on-demand action" in text
    assert "admin_password" in text
    assert "did you mean 'clear_cache'?" in text
    assert "create_site acts on the company" in text


def test_rate_limits_ip_key_must_name_something() -> None:
    found = problems(
        """version: 1
kinsta:
  rate_limits: {ip_key: "  "}
jobs: []
"""
    )
    assert len(found) == 1 and "rate_limits.ip_key" in found[0] and "egress" in found[0]


def test_polling_read_back_defaults_to_ten_intervals_and_never_passes_the_deadline() -> None:
    def polling(block: str) -> tuple[float, float | None]:
        text = f"version: 1\nkinsta:\n  polling: {block}\njobs: []\n"
        found = parse(text, "jobs.yaml", {}).kinsta.polling
        return found.read_back_window_s, found.read_back_s

    assert polling("{}") == (300.0, None)
    assert polling("{max_interval: 2s}") == (20.0, None)
    assert polling("{read_back: 90s}") == (90.0, 90.0)
    assert polling("{read_back: 2h, deadline: 30m}") == (1800.0, 7200.0)
