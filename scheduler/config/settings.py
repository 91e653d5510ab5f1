"""The sections of jobs.yaml around the jobs (kinsta, companies, notify, database) and the
environment variables that override or complete them (the mail server of e-mail
notifications) -> domain settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from scheduler.config.problems import Problems
from scheduler.config.shape import FileModel, KinstaModel, NotifyModel, url_problem
from scheduler.domain import (
    DEFAULT_API_URL,
    Company,
    Job,
    KinstaSettings,
    Notify,
    Polling,
    RateLimits,
    Secret,
    Smtp,
    Webhook,
)
from scheduler.errors import Problem
from scheduler.values import address_problem, token_problem

ENV_API_KEY = "KINSTA_API_KEY"
ENV_COMPANY_ID = "KINSTA_COMPANY_ID"
ENV_API_URL = "KINSTA_API_URL"
ENV_SITE_BASE_URL = "KINSTA_SCHEDULER_SITE_BASE_URL"
ENV_CONFIG = "KINSTA_SCHEDULER_CONFIG"
ENV_DATABASE_URL = "KINSTA_SCHEDULER_DATABASE_URL"
ENV_SMTP = "KINSTA_SCHEDULER_SMTP_"  # HOST, PORT, USER, PASSWORD, FROM: e-mail's mail server
SMTP_PORT = 587  # submission, where STARTTLS is the rule
DEFAULT_CONFIG = "jobs.yaml"
DEFAULT_DATABASE_FILE = "kinsta-scheduler.db"


def default_database_url(config_path: Path) -> str:
    """The history when jobs.yaml names none: a SQLite file beside it."""
    return f"sqlite:///{(config_path.parent / DEFAULT_DATABASE_FILE).resolve()}"


def database_url(raw: str | None, config_path: Path, override: str | None) -> str:
    if override:
        return override
    if raw is None:
        return default_database_url(config_path)
    # A relative SQLite path in jobs.yaml is relative to the file, not to the working directory.
    if raw.startswith("sqlite:///") and not raw.startswith("sqlite:////") and ":memory:" not in raw:
        return f"sqlite:///{(config_path.parent / raw.removeprefix('sqlite:///')).resolve()}"
    return raw


def kinsta_settings(raw: KinstaModel, env: Mapping[str, str]) -> KinstaSettings:
    # With a companies list each company's key comes from its own entry (${VAR} in jobs.yaml);
    # KINSTA_API_KEY and KINSTA_COMPANY_ID describe the single company otherwise.
    key = None if raw.companies else env.get(ENV_API_KEY) or raw.api_key or None
    polling = raw.polling
    companies = tuple(
        Company(c.name, Secret(c.api_key) if c.api_key else None, c.company_id or None)
        for c in raw.companies
    )
    return KinstaSettings(
        api_key=Secret(key) if key else None,
        company_id=None if raw.companies else env.get(ENV_COMPANY_ID) or raw.company_id or None,
        companies=companies,
        api_url=(env.get(ENV_API_URL) or raw.api_url or DEFAULT_API_URL).rstrip("/"),
        site_base_url=env.get(ENV_SITE_BASE_URL) or raw.site_base_url or None,
        rate_limits=RateLimits(
            per_minute=raw.rate_limits.per_minute,
            creation_per_minute=raw.rate_limits.creation_per_minute,
            logs_per_minute=raw.rate_limits.logs_per_minute,
            per_ip_per_minute=raw.rate_limits.per_ip_per_minute,
            ip_key=raw.rate_limits.ip_key,
            window_s=float(raw.rate_limits.window),
            creation_endpoints=tuple(raw.rate_limits.creation_endpoints),
        ),
        polling=Polling(
            first_poll_s=float(polling.first_poll),
            max_interval_s=float(polling.max_interval),
            not_found_grace_s=float(polling.not_found_grace),
            deadline_s=float(polling.deadline),
            read_back_s=float(polling.read_back) if polling.read_back is not None else None,
        ),
        timeout_s=float(raw.timeout),
    )


def check_keys(raw: KinstaModel, env: Mapping[str, str], problems: Problems) -> None:
    """An API key goes into an HTTP header: one that cannot (a line break pasted with it, a
    curly quote) is reported here, never echoed, rather than failing at the first request."""
    if not raw.companies and env.get(ENV_API_KEY):
        _check_key(env[ENV_API_KEY], (), problems, variable=ENV_API_KEY)
    elif not raw.companies and raw.api_key:
        _check_key(raw.api_key, ("kinsta", "api_key"), problems)
    for index, company in enumerate(raw.companies):
        if company.api_key:
            _check_key(company.api_key, ("kinsta", "companies", index, "api_key"), problems)


def check_env_urls(env: Mapping[str, str], problems: Problems) -> None:
    for variable in (ENV_API_URL, ENV_SITE_BASE_URL):
        problem = url_problem(env[variable]) if variable in env else None
        if problem is not None:  # no line in the file to point at
            problems.items.append(Problem(problems.file, None, f"{variable}: the URL {problem}"))


def _check_key(
    key: str, at: tuple[str | int, ...], problems: Problems, *, variable: str | None = None
) -> None:
    problem = token_problem(key)
    if problem is None:
        return
    if variable is None:
        problems.add(at, f"the API key {problem}")
    else:  # from the environment: there is no line in the file to point at
        problems.items.append(Problem(problems.file, None, f"{variable}: the API key {problem}"))


def notify_settings(raw: NotifyModel, smtp: Smtp | None) -> Notify:
    slack = [raw.slack] if isinstance(raw.slack, str) else raw.slack
    hooks = [Webhook("slack", Secret(u)) for u in slack] + [
        Webhook("json", Secret(u)) for u in raw.webhooks
    ]
    return Notify(
        webhooks=tuple(hooks),
        on=frozenset(raw.on),
        heartbeat_url=Secret(raw.heartbeat_url) if raw.heartbeat_url else None,
        slack_commands=raw.slack_commands.settings() if raw.slack_commands else None,
        heartbeat_start=raw.heartbeat_start if isinstance(raw.heartbeat_start, str) else None,
        email=tuple(_recipients(raw)),
        smtp=smtp,
    )


def _recipients(raw: NotifyModel) -> list[str]:
    return [raw.email] if isinstance(raw.email, str) else raw.email


def smtp_settings(raw: NotifyModel, env: Mapping[str, str], problems: Problems) -> Smtp | None:
    """The mail server for `notify.email`, from the environment (KINSTA_SCHEDULER_SMTP_*);
    None when no e-mail is asked for. Every problem is reported, naming its variable."""
    if not _recipients(raw):
        return None
    host = env.get(ENV_SMTP + "HOST", "").strip()
    if not host:
        problems.add(("notify", "email"), f"e-mail needs a mail server: set {ENV_SMTP}HOST")
    elif "/" in host or any(char.isspace() for char in host):
        _env_problem(problems, f"{ENV_SMTP}HOST: give the server's name alone, as smtp.example.com")
    port, user, password = _smtp_port(env, problems), env.get(ENV_SMTP + "USER") or None, None
    if env.get(ENV_SMTP + "PASSWORD"):
        password = Secret(env[ENV_SMTP + "PASSWORD"])
    if (user is None) != (password is None):
        _env_problem(problems, f"{ENV_SMTP}USER and {ENV_SMTP}PASSWORD: set both or neither")
    sender = env.get(ENV_SMTP + "FROM") or (user if user and not address_problem(user) else "")
    if not sender:
        _env_problem(problems, f"{ENV_SMTP}FROM: e-mail needs a From address: set it")
    elif address_problem(sender):
        _env_problem(problems, f"{ENV_SMTP}FROM: {sender[:60]!r} {address_problem(sender)}")
    if not host or port is None or not sender:
        return None
    return Smtp(host, sender, port, user, password)


def _smtp_port(env: Mapping[str, str], problems: Problems) -> int | None:
    text = env.get(ENV_SMTP + "PORT") or str(SMTP_PORT)
    if not text.isdigit() or not 0 < int(text) < 65536:
        _env_problem(problems, f"{ENV_SMTP}PORT: {text[:20]!r} is not a port number (587, 25)")
        return None
    return int(text)


def _env_problem(problems: Problems, message: str) -> None:
    """A problem with a variable of the environment: there is no line in the file to point at."""
    problems.items.append(Problem(problems.file, None, message))


def check_companies(
    raw: FileModel,
    kinsta: KinstaSettings,
    jobs: list[Job],
    problems: Problems,
    *,
    require_api_key: bool,
) -> None:
    listed = bool(raw.kinsta.companies)
    if listed and raw.kinsta.api_key:
        problems.add(("kinsta", "api_key"), "with a companies list, give each company its api_key")
    names = [c.name for c in kinsta.all_companies()]
    for index, company in enumerate(kinsta.all_companies()):
        if company.name in names[:index]:
            problems.add(
                ("kinsta", "companies", index, "name"), f"duplicate company name {company.name!r}"
            )
        if require_api_key and company.api_key is None:
            if listed:
                problems.add(
                    ("kinsta", "companies", index), f"company {company.name!r} has no api_key"
                )
            else:
                problems.add(("kinsta",), f"no API key: set {ENV_API_KEY} (or use --sandbox)")
    _assign_companies(raw.jobs, jobs, names, problems)


def _assign_companies(
    raw_jobs: list[Any], jobs: list[Job], names: list[str], problems: Problems
) -> None:
    """Each job names its company; with exactly one company it may leave it out."""
    by_id = {job.id: position for position, job in enumerate(jobs)}
    for index, raw_job in enumerate(raw_jobs):
        position = by_id.get(str(raw_job.get("id"))) if isinstance(raw_job, dict) else None
        if position is None:
            continue  # the job itself is invalid and already reported
        named = "company" in raw_job
        if not named and len(names) > 1:
            problems.add(
                ("jobs", index),
                f"several companies are listed: name one with company: ({', '.join(names)})",
            )
        elif named and jobs[position].company not in names:
            problems.add(
                ("jobs", index, "company"),
                f"unknown company {jobs[position].company!r} (known: {', '.join(names)})",
            )
        elif not named:
            jobs[position] = replace(jobs[position], company=names[0])
