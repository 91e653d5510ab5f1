"""Fuzzed jobs.yaml files: always a Config or a clear list of problems (file, line, what), never
another exception; through the CLI, exit 0 or 2 and never a traceback; given to a running
daemon, a bad file leaves the schedule as it was."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import config as config_module
from scheduler.clock import SystemClock
from scheduler.daemon import Collaborators, Daemon
from scheduler.errors import ConfigError
from scheduler.history import make_engine, sql_store
from scheduler.history.migrate import upgrade
from tests.acceptance.conftest import Cli
from tests.reliability.conftest import LONG

KEYS = (
    "version", "timezone", "database", "kinsta", "api_key", "company_id", "rate_limits",
    "per_minute", "window", "polling", "first_poll", "deadline", "companies", "name", "sandbox",
    "sites", "retention", "older_than", "keep_last", "notify", "slack", "webhooks", "on",
    "email", "heartbeat_url", "heartbeat_start",
    "daemon", "shutdown_timeout", "heartbeat", "jobs", "id", "schedule", "cron", "every",
    "jitter", "targets", "labels", "exclude", "environment", "actions", "concurrency",
    "on_failure", "catch_up", "timeout", "company", "allow_scheduled", "clear_cache", "backup",
    "update_plugins", "only", "min_age", "safe", "verify", "paths", "status", "push_to_live",
    "create_site", "prune_backups", "keep", "frobnicate",
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(("1h", "30s", "0 3 * * *", "61 * * * *", "Europe/Amsterdam", "Mars/Base",
                     "live", "all", "${NOPE}", "${HOME}", "*", "stop", "minor", "8.3", "")),
    st.text(max_size=20),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=5),
    ),
    max_leaves=25,
)
DOCUMENTS = st.one_of(
    # near-valid files with fuzzed parts
    st.builds(
        lambda top, jobs: {"version": 1, **top, "jobs": jobs},
        st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3),
        st.lists(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6), max_size=3),
    ),
    VALUES,
)


def render(document: Any, mangle: int) -> str:
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    if mangle:  # break the YAML itself now and then
        cut = mangle % (len(text) + 1)
        text = text[:cut] + ["{", "]", ": :", "\t", "'", "&a *b", "\x00"][mangle % 7] + text[cut:]
    return text


@settings(
    max_examples=3000 if LONG else 300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(DOCUMENTS, st.integers(min_value=0, max_value=50))
def test_any_file_gives_a_config_or_located_problems(document: Any, mangle: int) -> None:
    text = render(document, mangle)
    try:
        config_module.parse(text, "jobs.yaml", {"HOME": "/home/x"})
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            shown = str(problem)
            assert shown.startswith("jobs.yaml"), shown
            assert problem.line is None or problem.line >= 1


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(DOCUMENTS, st.integers(min_value=0, max_value=50))
def test_the_cli_never_shows_a_traceback(cli: Cli, document: Any, mangle: int) -> None:
    (cli.cwd / "jobs.yaml").write_text(render(document, mangle))
    result = cli("validate", "--sandbox", "--offline")
    assert result.code in (0, 2), result.err
    assert "Traceback" not in result.err + result.out and "internal error" not in result.err


@settings(max_examples=60, deadline=None)
@given(DOCUMENTS, st.integers(min_value=1, max_value=50))
def test_a_running_daemon_keeps_its_schedule_on_a_bad_file(document: Any, mangle: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jobs.yaml"
        good = "version: 1\njobs:\n  - id: keep\n    schedule: {every: 1h}\n    actions: [clear_cache]\n"
        path.write_text(good)
        config = config_module.load(path, {})
        engine = make_engine(f"sqlite:///{Path(tmp) / 'history.db'}")
        upgrade(engine)
        daemon = Daemon(
            config,
            Collaborators(
                sql_store(engine),
                lambda job: None,  # type: ignore[arg-type,return-value]
                SystemClock(),
                lambda: config_module.load(path, {}),
                path,
                cancel=threading.Event(),
            ),
        )
        daemon.start(paused=True)
        try:
            path.write_text(render(document, mangle))
            try:
                config_module.load(path, {})
                valid = True
            except ConfigError:
                valid = False
            changed = daemon.reload()
            if not valid:
                assert not changed and daemon.scheduled_jobs() == ["keep"]
                assert daemon.config.revision == config.revision
        finally:
            daemon.shutdown(timeout_s=1)
            engine.dispose()
