"""Read and validate jobs.yaml: every problem collected and reported at once, each with file,
line, job id and field."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from scheduler.config.blackouts import blackouts_of
from scheduler.config.interpolate import interpolate
from scheduler.config.jobs import jobs_of, top_zone
from scheduler.config.problems import Problems, validate_leniently
from scheduler.config.report import report_branding
from scheduler.config.settings import (
    DEFAULT_CONFIG,
    ENV_CONFIG,
    ENV_DATABASE_URL,
    check_companies,
    check_env_urls,
    check_keys,
    database_url,
    kinsta_settings,
    notify_settings,
    smtp_settings,
)
from scheduler.config.shape import FileModel
from scheduler.config.yaml_source import MAX_FILE_BYTES, TOO_LARGE, load_yaml
from scheduler.domain import (
    Config,
    DaemonSettings,
    Job,
    KinstaSettings,
    Retention,
)
from scheduler.errors import ConfigError, Problem


def parse(
    text: str,
    file: str,
    env: Mapping[str, str],
    *,
    database_override: str | None = None,
    require_api_key: bool = False,
    sandbox: bool = False,
) -> Config:
    """Validate the text of a jobs.yaml; raise ConfigError listing every problem. Jobs marked
    `sandbox_only` are validated but left out unless `sandbox`."""
    problems, data = _read(text, file, env)
    # A wrong section hides nothing else: the others are still checked (validate_leniently).
    raw, wrong = validate_leniently(FileModel, data, (), problems, {"version": 1})
    zone = top_zone(data.get("timezone", "UTC"), problems)
    blackouts = blackouts_of(data.get("blackouts"), ("blackouts",), zone, problems)
    jobs = jobs_of(data.get("jobs"), zone, problems, sandbox=sandbox)
    if raw is None:
        raise ConfigError(problems.sorted())
    override = database_override or env.get(ENV_DATABASE_URL)
    kinsta = kinsta_settings(raw.kinsta, env)
    check_keys(raw.kinsta, env, problems)
    check_env_urls(env, problems)
    if "kinsta" not in wrong:  # which companies there are is not known
        check_companies(raw, kinsta, jobs, problems, require_api_key=require_api_key)
    smtp = smtp_settings(raw.notify, env, problems)
    branding, logo_problem = report_branding(raw.report, file)
    if logo_problem is not None:
        problems.add(("report", "logo"), logo_problem)
    if problems.items:
        raise ConfigError(problems.sorted())
    config = _config(raw, text, file, zone, jobs, kinsta=kinsta, override=override)
    notify = notify_settings(raw.notify, smtp)
    return replace(config, notify=notify, blackouts=blackouts, report=branding)


def _read(text: str, file: str, env: Mapping[str, str]) -> tuple[Problems, dict[str, Any]]:
    """The file's data with ${VAR} resolved, and the problems found so far; raises ConfigError
    when the file is not even a mapping."""
    located, problems_found = load_yaml(text, file)
    problems = Problems(file, located, located.data)
    problems.items.extend(problems_found)
    if not isinstance(located.data, dict):
        problems.add((), "the file must be a mapping with at least 'version: 1'")
        raise ConfigError(problems.sorted())
    missing: list[Any] = []
    data = interpolate(located.data, env, (), missing)
    for path, message in missing:
        problems.add(path, message)
    # A value whose ${...} failed is reported once: not again for what it became.
    problems.settled = {path for path, _ in missing}
    return problems, data


def _config(
    raw: FileModel,
    text: str,
    file: str,
    zone: str,
    jobs: list[Job],
    *,
    kinsta: KinstaSettings,
    override: str | None,
) -> Config:
    return Config(
        path=file,
        revision=hashlib.sha256(text.encode()).hexdigest()[:12],
        timezone=zone,
        database_url=database_url(raw.database, Path(file), override),
        kinsta=kinsta,
        sandbox=raw.sandbox.settings(),
        jobs=tuple(jobs),
        retention=Retention(float(raw.retention.older_than), raw.retention.keep_last)
        if raw.retention
        else None,
        daemon=DaemonSettings(
            shutdown_timeout_s=float(raw.daemon.shutdown_timeout),
            heartbeat_s=float(raw.daemon.heartbeat),
            db_retry_s=float(raw.daemon.db_retry),
        ),
    )


_NOT_FOUND = (
    f"file not found: name it with --config PATH or {ENV_CONFIG} (in a container, mount the "
    'directory that holds it, for example -v "$PWD/data:/data")'
)


def resolve_path(flag: str | None, env: Mapping[str, str]) -> Path:
    return Path(flag or env.get(ENV_CONFIG) or DEFAULT_CONFIG)


def load(
    path: Path,
    env: Mapping[str, str] | None = None,
    *,
    database_override: str | None = None,
    require_api_key: bool = False,
    sandbox: bool = False,
) -> Config:
    environ = dict(os.environ) if env is None else env
    try:
        with path.open("rb") as stream:  # read no more than the bound (a device never ends)
            raw = stream.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise ConfigError([Problem(str(path), None, TOO_LARGE)])
        text = raw.decode("utf-8")
    except FileNotFoundError as exc:
        raise ConfigError([Problem(str(path), None, _NOT_FOUND)]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(str(path), None, f"cannot read: {exc}")]) from exc
    return parse(
        text,
        str(path),
        environ,
        database_override=database_override,
        require_api_key=require_api_key,
        sandbox=sandbox,
    )
