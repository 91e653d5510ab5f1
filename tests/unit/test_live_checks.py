"""What `validate` checks only against the site list: a job's environment some site has."""

from __future__ import annotations

from pathlib import Path

from scheduler.config import live, load
from scheduler.domain import Config

JOBS = """version: 1
jobs:
  - id: typo
    schedule: {cron: "0 3 * * *"}
    targets:
      sites: ["*"]
      environment: lve
    actions: [clear_cache]
  - id: by-display-name
    targets: {environment: Pre-Production}
    actions: [clear_cache]
  - id: kinds
    targets: {environment: staging}
    actions: [clear_cache]
  - id: new-site
    actions: [{create_site: {display_name: x, region: r, admin_email: a@b.c, admin_user: u,
               admin_password: secret-pw}}]
"""


def config(tmp_path: Path, text: str = JOBS) -> Config:
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    return load(path, {})


def test_an_environment_no_site_has_is_a_located_problem(tmp_path: Path) -> None:
    found = live.environment_problems(
        config(tmp_path), {"default": ["live", "Live", "staging", "pre-production"]}
    )
    assert [str(p) for p in found] == [
        f"{tmp_path / 'jobs.yaml'}:7: job 'typo': targets.environment: no site has an "
        "environment named 'lve' (did you mean 'live'?): the job would find no target"
    ]


def test_names_match_as_targets_match_them_ignoring_case(tmp_path: Path) -> None:
    text = JOBS.replace("environment: lve", "environment: LIVE-2")
    known = {"default": ["live-2", "Pre-Production"]}
    assert live.environment_problems(config(tmp_path, text), known) == []


def test_a_company_whose_sites_were_not_read_is_not_judged(tmp_path: Path) -> None:
    assert live.environment_problems(config(tmp_path), {}) == []
    assert live.environment_problems(config(tmp_path), {"other": []}) == []


def test_the_words_and_company_level_jobs_are_never_names(tmp_path: Path) -> None:
    named = [job.id for job in live.named_environments(config(tmp_path))]
    assert named == ["typo", "by-display-name"]


def test_offline_says_which_names_went_unchecked(tmp_path: Path) -> None:
    assert live.unchecked(config(tmp_path)) == [
        "job 'typo': targets.environment 'lve' is an environment's name, checked against the "
        "site list only online (did you mean 'live'?)",
        "job 'by-display-name': targets.environment 'Pre-Production' is an environment's name, "
        "checked against the site list only online",
    ]


def test_a_file_changed_since_it_was_loaded_still_gives_the_problem(tmp_path: Path) -> None:
    loaded = config(tmp_path)
    (tmp_path / "jobs.yaml").write_text("not: [valid")
    found = live.environment_problems(loaded, {"default": ["live"]})
    assert [(p.line, p.job_id, p.field) for p in found] == [
        (None, "typo", "targets.environment"),
        (None, "by-display-name", "targets.environment"),
    ]
