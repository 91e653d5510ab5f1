"""jobs.yaml validation: every problem at once, each with file, line, job id and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.actions.backups import PruneBackupsOptions
from scheduler.actions.updates import UpdateOptions
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
    assert "demo-cache-clear" not in {j.id for j in config.jobs}  # sandbox_only
    assert {j.id for j in load(ROOT / "jobs.yaml", {}, sandbox=True).jobs} >= {
        "nightly-cache-clear",
        "demo-cache-clear",
    }
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
    assert problems(text) == [  # a wrong concurrency hides no wrong option
        "jobs.yaml:4: job 'x': actions.0.clear_cache.force: unknown key",
        "jobs.yaml:5: job 'x': concurrency: must be auto or a whole number from 1 to 512",
    ]


def test_a_list_option_given_a_scalar_asks_for_a_list() -> None:
    text = "version: 1\njobs:\n  - id: x\n    actions: [{update_plugins: {exclude: 5}}]\n"
    assert problems(text) == [
        "jobs.yaml:4: job 'x': actions.0.update_plugins.exclude: Input should be a valid list"
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
    plugins, themes, prune = (
        options["update_plugins"],
        options["update_themes"],
        options["prune_backups"],
    )
    assert isinstance(plugins, UpdateOptions) and isinstance(themes, UpdateOptions)
    assert isinstance(prune, PruneBackupsOptions)
    assert plugins.min_age == 3 * 86400
    assert plugins.verify.paths == ("/", "/shop/")
    assert themes.only == "all" and prune.keep == 3


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


# --- hostile values (issue 12 items 9-12, issue 11 items 2 and 25) ------------------------------

KEY_CANARY = "CANARY-KEY-123456"


@pytest.mark.parametrize(
    "key",
    [
        KEY_CANARY + "\r",
        KEY_CANARY + "\n",
        " " + KEY_CANARY,
        KEY_CANARY + " x",
        KEY_CANARY + "\t",
        KEY_CANARY + "\x00",
        KEY_CANARY + "\u2019",
        KEY_CANARY + "é",
        "   ",
    ],
)
def test_an_api_key_a_header_cannot_carry_is_rejected_without_echoing_it(key: str) -> None:
    (found,) = problems("version: 1\n", {"KINSTA_API_KEY": key})
    assert found.startswith("jobs.yaml: KINSTA_API_KEY: the API key ") and KEY_CANARY not in found
    text = "version: 1\nkinsta:\n  companies:\n    - {name: a, api_key: '${A_KEY}'}\n"
    (found,) = problems(text, {"A_KEY": key})
    assert found.startswith("jobs.yaml:4: kinsta.companies.0.api_key: the API key ")
    assert KEY_CANARY not in found


def alias_bomb(levels: int) -> str:
    """The "billion laughs": each level is nine aliases of the one before."""
    lines = [
        "version: 1",
        'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    ]
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    return "\n".join(lines) + "\njobs: []\n"


def test_an_alias_bomb_is_refused_quickly() -> None:
    import time

    started = time.monotonic()
    (found,) = problems(alias_bomb(9))
    assert time.monotonic() - started < 2
    assert (
        found.startswith("jobs.yaml:7: too large: aliases expand the value here")
        and "250000" in found
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("version: 1\na: &a [*a]\n", "refers to itself"),
        ("version: 1\nx: " + "[" * 500 + "]" * 500 + "\n", "nested more than 40 levels"),
    ],
)
def test_a_self_referring_or_deeply_nested_file_is_refused(text: str, words: str) -> None:
    (found,) = problems(text)
    assert found.startswith("jobs.yaml") and words in found


def test_a_file_of_too_many_values_says_so_without_blaming_aliases() -> None:
    (found,) = problems("version: 1\nx: [" + "1, " * 260_000 + "]\n")
    assert found == "jobs.yaml:2: too large: more than 250000 values"


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text("version: 1\n" + "# padding\n" * 500_000)
    with pytest.raises(ConfigError, match="larger than 4 MiB"):
        load(path, {})


def test_anchors_and_merge_keys_within_bounds_still_work() -> None:
    text = """version: 1
jobs:
  - &first
    id: one
    targets: &targets {sites: ["a*"], environment: all}
    actions: [clear_cache]
  - {<<: *first, id: two, schedule: {every: 1h}}
  - {id: three, targets: *targets, actions: [restart_php]}
"""
    config = parse(text, "jobs.yaml", {})
    assert [j.id for j in config.jobs] == ["one", "two", "three"]
    assert config.jobs[2].targets.sites == ("a*",)


JOB = "version: 1\n{top}jobs:\n  - id: j\n    schedule: {schedule}\n    actions: [clear_cache]\n{extra}"


def job_problems(schedule: str = "{every: 1h}", extra: str = "", top: str = "") -> list[str]:
    return problems(JOB.format(schedule=schedule, extra=extra, top=top), {})


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("{cron: '0 0 30 2 *'}", "never fires"),
        ("{cron: '0 0 31 4,6,9,11 *'}", "never fires"),
        ("{cron: '*/10 * * * *', jitter: 10m}", "jitter must be shorter than the time between"),
        ("{cron: '0,59 0,23 * * *', jitter: 2m}", "(1m in '0,59 0,23 * * *')"),
        ("{every: 99999999999999999999d}", "at most 36500d"),
        ("{every: 99999999999999999999}", "at most 36500d"),
        ("{every: .nan}", "must be a number"),
        ("{every: .inf}", "at most 36500d"),
    ],
)
def test_a_schedule_that_cannot_work_is_a_located_problem(schedule: str, words: str) -> None:
    (found,) = job_problems(schedule)
    assert found.startswith("jobs.yaml:4: job 'j': schedule: ") and words in found


def test_a_leap_day_cron_and_a_jitter_inside_the_gap_are_fine() -> None:
    text = JOB.format(schedule="{cron: '0 0 29 2 *', jitter: 1h}", extra="", top="")
    assert parse(text, "jobs.yaml", {}).jobs[0].schedule == CronSchedule("0 0 29 2 *", "UTC", 3600)


@pytest.mark.parametrize(
    ("top", "extra", "words"),
    [
        ("kinsta: {timeout: 0s}\n", "", "jobs.yaml:2: kinsta.timeout: must be more than 0"),
        ("retention: {older_than: 99999999999d}\n", "", "retention.older_than: a duration can"),
        ("retention: {older_than: 1d, keep_last: 99999999999999999999}\n", "", "keep_last"),
        ("kinsta: {rate_limits: {per_minute: 99999999999999999999}}\n", "", "per_minute"),
        ("kinsta: {polling: {max_interval: 0}}\n", "", "max_interval: must be more than 0"),
        ("", "    timeout: 0s\n", "job 'j': timeout: must be more than 0"),
        ("", "    actions: [{restore_backup: {backup: 99999999999999999999999}}]\n", "backup"),
    ],
)
def test_out_of_range_values_are_located_problems(top: str, extra: str, words: str) -> None:
    text = JOB.format(schedule="{every: 1h}", extra=extra, top=top)
    if "actions:" in extra:
        text = text.replace("    actions: [clear_cache]\n", "", 1)
    found = problems(text)
    assert any(words in p for p in found), found


@pytest.mark.parametrize(
    "url", ["not-a-url", "ftp://x/y", "", "${UNCLOSED", "http://[::1", "http://x:99999", "http://"]
)
def test_an_api_url_that_is_no_http_url_is_a_problem_in_the_file_and_in_the_environment(
    url: str,
) -> None:
    (in_file,) = job_problems(top=f"kinsta: {{api_url: '{url}'}}\n")
    assert in_file.startswith("jobs.yaml:2: kinsta.api_url: ")
    (in_env,) = problems(
        JOB.format(schedule="{every: 1h}", extra="", top=""), {"KINSTA_API_URL": url}
    )
    assert in_env.startswith("jobs.yaml: KINSTA_API_URL: the URL ")


def test_hosting_api_url_is_still_accepted_though_no_longer_used() -> None:
    text = JOB.format(
        schedule="{every: 1h}",
        extra="",
        top="kinsta: {hosting_api_url: 'https://api.sevalla.com/v2'}\n",
    )
    assert parse(text, "jobs.yaml", {}).kinsta.api_url == "https://api.kinsta.com/v2"


def test_a_webhook_url_is_checked_without_being_echoed() -> None:
    (found,) = job_problems(top="notify: {slack: 'https://[secret.example/T0/B0'}\n")
    assert found.startswith("jobs.yaml:2: notify.slack: a webhook is an http(s):// URL")
    assert "secret" not in found


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("${NOPE:-${ALSO_NOPE}}", "environment variable ALSO_NOPE is not set"),
        ("${UNCLOSED", "a ${ without its closing }"),
        ("${not-a-name}", "is not a variable reference"),
    ],
)
def test_a_reference_that_cannot_be_resolved_is_a_problem(value: str, words: str) -> None:
    (found,) = job_problems(top=f"kinsta: {{api_key: '{value}'}}\n")
    assert found.startswith("jobs.yaml:2: kinsta.api_key: ") and words in found


def test_a_default_may_hold_a_reference() -> None:
    text = JOB.format(schedule="{every: 1h}", extra="", top="kinsta: {api_key: '${NOPE:-${K}}'}\n")
    config = parse(text, "jobs.yaml", {"K": "from-k"})
    assert config.kinsta.api_key is not None and config.kinsta.api_key.reveal() == "from-k"


def test_the_readmes_notify_example_is_valid_with_on_as_a_key() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Leaving the daemon alone\n\n```yaml\n", 1)[1].split("```", 1)[0]
    text = "version: 1\n" + block.replace("heartbeat_url: ...", "heartbeat_url: https://x.example/")
    env = {
        "SLACK_WEBHOOK_URL": "https://hooks.example/T/B",
        "HC_UUID": "1234",
        "KINSTA_SCHEDULER_SMTP_HOST": "smtp.example.com",
        "KINSTA_SCHEDULER_SMTP_FROM": "scheduler@example.com",
    }
    config = parse(text, "jobs.yaml", env)
    assert config.notify.on == frozenset({"failure", "recovery", "missed", "cancelled", "halted"})
    assert config.notify.email == ("ops@example.com",) and config.notify.heartbeat_start == "/start"
    only = parse(
        text.replace("on: [failure, recovery, missed, cancelled, halted]", "on: [failure]"),
        "j",
        env,
    )
    assert only.notify.on == frozenset({"failure"})


@pytest.mark.parametrize("key", ["yes", "off", "y", "No"])
def test_a_key_yaml_11_reads_as_a_boolean_is_reported_by_its_name(key: str) -> None:
    (found,) = problems(f"version: 1\n{key}: 1\n")
    assert found == f"jobs.yaml:2: {key}: unknown key"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nretention: {older_than: 2026-02-30}\n", "retention.older_than: '2026-02-30'"),
        ("version: 1\nx: !!int abc\n", "invalid YAML: a tagged value cannot be read"),
        ("version: 1\njobs: [\x00]\n", "invalid YAML: unacceptable character #x0000"),
    ],
)
def test_what_the_yaml_library_cannot_build_is_one_line(text: str, expected: str) -> None:
    (found,) = problems(text)
    assert expected in found and "\n" not in found


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
