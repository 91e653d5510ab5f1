"""jobs.yaml's `enabled` and `blackouts` (top-level and per job): zones, the one-line form,
what `to` includes, and problems named with file, line, job and field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.blackouts import FixedBlackout, RecurringBlackout
from scheduler.config import parse
from scheduler.errors import ConfigError

HEAD = "version: 1\ntimezone: America/New_York\n"
JOB = """jobs:
  - id: nightly
    schedule: {schedule}
    actions: [clear_cache]
{extra}"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, "jobs.yaml", {})
    return [str(p) for p in caught.value.problems]


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_a_fixed_range_is_read_in_the_files_zone_and_includes_its_last_minute() -> None:
    text = HEAD + 'blackouts:\n  - "2026-11-27 00:00 to 2026-12-01 23:59, Black Friday"\n'
    (friday,) = parse(text + "jobs: []\n", "jobs.yaml", {}).blackouts
    assert friday == FixedBlackout(
        "Black Friday", at(2026, 11, 27, 5), at(2026, 12, 2, 5), "America/New_York"
    )


def test_a_date_alone_covers_the_whole_day_and_a_blackout_may_name_its_zone() -> None:
    text = HEAD + (
        "blackouts:\n"
        "  - {from: 2026-10-25, to: 2026-10-25, timezone: Europe/Amsterdam}\n"  # 25 hours long
        "  - {name: s, from: '2026-12-01T08:00:00', to: '2026-12-01T08:00:30', timezone: UTC}\n"
        "jobs: []\n"
    )
    day, seconds = parse(text, "jobs.yaml", {}).blackouts
    assert isinstance(day, FixedBlackout) and isinstance(seconds, FixedBlackout)
    assert (day.name, day.start, day.end) == (
        "2026-10-25 to 2026-10-25",
        at(2026, 10, 24, 22),
        at(2026, 10, 25, 23),
    )
    assert (seconds.start, seconds.end) == (at(2026, 12, 1, 8), at(2026, 12, 1, 8, 0, 31))


def test_a_range_starting_in_a_gap_starts_when_the_clocks_go_forward() -> None:
    text = HEAD + (
        "blackouts: [{from: '2027-03-28 02:30', to: '2027-03-28 05:00', timezone: Europe/Amsterdam}]\n"
        "jobs: []\n"
    )
    (gap,) = parse(text, "jobs.yaml", {}).blackouts
    assert isinstance(gap, FixedBlackout) and gap.start == at(2027, 3, 28, 1)


def test_a_recurring_window_and_a_jobs_own_blackouts_in_its_cron_zone() -> None:
    extra = (
        "    enabled: false\n    blackouts: [{from: 2026-12-24, to: 2026-12-26, name: Christmas}]\n"
    )
    text = (
        HEAD
        + "blackouts: [{name: business hours, cron: '0 9 * * 1-5', duration: 8h}]\n"
        + JOB.format(schedule="{cron: '0 3 * * *', timezone: Europe/Berlin}", extra=extra)
    )
    config = parse(text, "jobs.yaml", {})
    assert config.blackouts == (
        RecurringBlackout("business hours", "0 9 * * 1-5", 8 * 3600.0, "America/New_York"),
    )
    (job,) = config.jobs
    assert not job.enabled
    assert job.blackouts == (
        FixedBlackout("Christmas", at(2026, 12, 23, 23), at(2026, 12, 26, 23), "Europe/Berlin"),
    )


def test_a_job_on_an_interval_reads_its_blackouts_in_the_files_zone() -> None:
    extra = "    blackouts: ['2026-12-24 to 2026-12-24']\n"
    (job,) = parse(HEAD + JOB.format(schedule="{every: 1h}", extra=extra), "jobs.yaml", {}).jobs
    (christmas,) = job.blackouts
    assert isinstance(christmas, FixedBlackout) and christmas.start == at(2026, 12, 24, 5)
    assert job.enabled  # the default


def test_every_blackout_problem_is_named_with_line_job_and_field() -> None:
    text = (
        HEAD
        + (
            "blackouts:\n"
            "  - sometime, never\n"
            "  - {from: '2026-12-01 10:00', to: 2026-11-30}\n"
            "  - {cron: '0 9 * * 1-5'}\n"
            "  - {cron: '0 9 * * 1-5', duration: 8h, from: 2026-01-01}\n"
            "  - {cron: '0 0 30 2 *', duration: 1h}\n"
            "  - {cron: '0 9 * * *', duration: 400d, timezone: Mars/Base}\n"
        )
        + JOB.format(
            schedule="{every: 1h}",
            extra="    blackouts:\n      - {from: '2026-11-27T00:00+01:00', to: 2026-12-01}\n"
            "      - {from: 2026-11-27, to: 2026-12-01, reason: x}\n",
        )
    )
    shape = "a blackout is {from, to} (a fixed range), {cron, duration} (a recurring window)"
    assert problems(text) == [
        f"jobs.yaml:4: blackouts.0: {shape}, or 'FROM to TO, NAME'",
        "jobs.yaml:5: blackouts.1.to: ends before it starts (2026-12-01 10:00 to 2026-11-30)",
        "jobs.yaml:6: blackouts.2.duration: a recurring window needs both cron and duration",
        f"jobs.yaml:7: blackouts.3: {shape}, or 'FROM to TO, NAME'",
        "jobs.yaml:8: blackouts.4.cron: cron expression '0 0 30 2 *' never fires (no such date)",
        "jobs.yaml:9: blackouts.5.timezone: unknown time zone 'Mars/Base'",
        "jobs.yaml:15: job 'nightly': blackouts.0.from: '2026-11-27T00:00+01:00' is not a date "
        "(2026-11-27) or a wall time (2026-11-27 00:00) without an offset: timezone says where it is",
        "jobs.yaml:16: job 'nightly': blackouts.1.reason: unknown key",
    ]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("enabled: maybe", "enabled: Input should be a valid boolean"),
        ("blackouts: 3", "blackouts: Input should be a valid list"),
        (
            "blackouts: [{from: 2026-02-30, to: 2026-03-01}]",
            "blackouts.0.from: '2026-02-30' is not a date",
        ),
        (
            "blackouts: [{cron: '0 9 * * *', duration: 0s}]",
            "blackouts.0.duration: must be more than 0",
        ),
        (
            "blackouts: [{cron: '0 9 * * *', duration: 367d}]",
            "blackouts.0.duration: a window lasts at most 366d",
        ),
        ("blackouts: [{from: 9999-12-31, to: 9999-12-31}]", "blackouts.0: is out of range"),
    ],
)
def test_a_bad_job_key_names_the_job_and_field(value: str, words: str) -> None:
    (found,) = problems(HEAD + JOB.format(schedule="{every: 1h}", extra=f"    {value}\n"))
    assert found.startswith("jobs.yaml:7: job 'nightly': ") and words in found, found


def test_the_readmes_pausing_example_is_valid() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("## Pausing and blackouts\n\n```yaml\n", 1)[1].split("```", 1)[0]
    config = parse("version: 1\n" + block, "jobs.yaml", {})
    assert [b.name for b in config.blackouts] == ["Black Friday", "business hours"]
    (job,) = config.jobs
    assert job.enabled and [b.name for b in job.blackouts] == ["year end"]
