"""Hostile input: fuzzed jobs.yaml files, flags, environment variables, URLs and keys. The
promise (README): bad input gets one clear line and exit 2, never a traceback or "internal
error" (exit 70), and the API key appears nowhere.

The bulk runs the CLI's main() in this process (a few milliseconds a case) from a seeded
random generator, so every run tries the same cases; a handful of cases run the real
executable in a subprocess. Each case id carries its seed: rerun one with `-k seed-17`."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from scheduler import cli as cli_module
from scheduler.sandbox import DEFAULT_API_KEY, Sandbox, SandboxOptions, SandboxServer
from tests.acceptance.conftest import Cli, Result

KEY = "HOSTILE-KEY-5eb1c7d2"  # a well-formed key; it must never be printed
CONFIG = "jobs.yaml"


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out[-2000:]}\n--- stderr\n{self.err[-2000:]}"


def check(outcome: Outcome, *, secrets: tuple[str, ...] = (KEY,)) -> None:
    """Exit 0 or 2; no traceback, no internal error; on 2, every line of stderr a message
    (a located problem of the file, or one `error:` line, or click's usage error)."""
    shown = outcome.out + outcome.err
    assert outcome.code in (0, 2), outcome
    assert "Traceback" not in shown and "internal error" not in shown, outcome
    for secret in secrets:
        assert secret not in shown, f"a secret was printed\n{outcome}"
    if outcome.code == 2:
        lines = [line for line in outcome.err.splitlines() if line.strip()]
        assert lines, outcome
        if lines[0].startswith("Usage:"):
            assert lines[-1].startswith("Error: "), outcome
        elif lines[0].startswith("error: "):
            assert len(lines) == 1, outcome
        else:  # one line per problem, each naming the file
            assert all(not line.startswith((" ", "\t")) for line in lines), outcome


@contextlib.contextmanager
def _isolated(env: dict[str, str], cwd: Path) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """The process as a fresh CLI run would see it: this environment, this directory, its own
    stdout and stderr; the logging set-up the command installs is undone afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with (
            mock.patch.dict(os.environ, env, clear=True),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            yield out, err
    finally:
        os.chdir(previous)
        root.handlers[:] = handlers
        root.setLevel(level)


def run_main(args: list[str], env: dict[str, str], cwd: Path) -> Outcome:
    with _isolated(env, cwd) as (out, err):
        try:
            cli_module.main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Outcome(code, out.getvalue(), err.getvalue())


# --- a working directory with a valid file and a history ------------------------------------------

BASE = """version: 1
timezone: Europe/Amsterdam
jobs:
  - id: nightly
    schedule: {cron: "30 2 * * *", jitter: 5m}
    actions: [clear_cache]
  - id: often
    schedule: {every: 10m}
    actions: [clear_cache]
  - id: by-hand
    actions: [clear_cache]
"""


@dataclass
class Workdir:
    path: Path
    database: str

    def env(self, **extra: str) -> dict[str, str]:
        base = {
            "KINSTA_API_KEY": KEY,
            "KINSTA_SCHEDULER_DATABASE_URL": self.database,
            "PATH": os.environ.get("PATH", ""),
        }
        return {**base, **extra}

    def run(self, *args: str, **env: str) -> Outcome:
        return run_main(list(args), self.env(**env), self.path)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Workdir:
    path = tmp_path_factory.mktemp("hostile")
    (path / CONFIG).write_text(BASE)
    database = f"sqlite:///{path / 'history.db'}"
    workdir = Workdir(path, database)
    assert workdir.run("db", "upgrade").code == 0
    return workdir


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(Sandbox(SandboxOptions(sites=3, seed=5))) as server:
        yield server


# --- the cases the issues list, each by name -------------------------------------------------------

BOMB = (
    "version: 1\n"
    'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    + "".join(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]\n" for n in range(1, 10))
    + "jobs: []\n"
)
JOB = "version: 1\njobs:\n  - id: j\n    schedule: {schedule}\n    actions: [clear_cache]\n"
LISTED: list[tuple[str, list[str], dict[str, str], str | None, str]] = [
    # (name, args, environment, jobs.yaml text or None for the base, words expected on stderr)
    ("since-huge", ["history", "--since", "99999999999999999999d"], {}, None, "out of range"),
    ("since-days", ["history", "--since", "999999d"], {}, None, "out of range"),
    ("since-weeks", ["history", "--since", "9999999w"], {}, None, "out of range"),
    (
        "since-year-1",
        ["history", "--since", "0001-01-01", "--until", "9999-12-31T23:59:59"],
        {"TZ": "Asia/Tokyo"},
        None,
        "out of range",
    ),
    ("events-since", ["history", "governor", "--since", "999999d"], {}, None, "out of range"),
    ("prune-older", ["history", "prune", "--older-than", "9999999w"], {}, None, "out of range"),
    ("show-huge", ["show", "99999999999999999999999"], {}, None, "no run"),
    ("plan-at-end", ["plan", "--offline", "--at", "9999-12-25"], {}, None, "between the years"),
    ("show-superscript", ["show", "²"], {}, None, "is not a number"),
    ("cancel-huge", ["cancel", "99999999999999999999999"], {}, None, "no run"),
    ("cancel-unknown", ["cancel", "424242"], {}, None, "no run 424242"),
    ("cancel-superscript", ["cancel", "²"], {}, None, "is not a number"),
    ("cancel-nothing", ["cancel"], {}, None, "a RUN_ID or --job JOB"),
    ("cancel-both", ["cancel", "1", "--job", "nightly"], {}, None, "a RUN_ID or --job JOB"),
    ("cancel-idle-job", ["cancel", "--job", "nightly"], {}, None, "no running run"),
    ("plan-huge-every", ["plan", "--offline"], {}, JOB.format(schedule="{every: 99999999999999999999d}"), "at most 36500d"),
    ("plan-huge-int", ["plan", "--offline"], {}, JOB.format(schedule="{every: 99999999999999999999}"), "at most 36500d"),
    ("api-url-ipv6", ["validate"], {"KINSTA_API_URL": "http://[::1"}, None, "KINSTA_API_URL: the URL cannot be parsed"),
    ("api-url-trigger", ["trigger", "by-hand"], {"KINSTA_API_URL": "http://[::1"}, None, "KINSTA_API_URL"),
    ("db-url-ipv6", ["history"], {"KINSTA_SCHEDULER_DATABASE_URL": "postgresql://u:p@[::1/x"}, None, "cannot be parsed"),
    ("downgrade-garbage", ["db", "downgrade", "garbage"], {}, None, "schema revision 'garbage'"),
    ("key-curly-quote", ["validate"], {"KINSTA_API_KEY": "abc\u2019def"}, None, "non-ASCII"),
    ("key-cr", ["validate", "--offline"], {"KINSTA_API_KEY": KEY + "\r"}, None, "ends with whitespace"),
    ("key-blank", ["validate", "--offline"], {"KINSTA_API_KEY": "   "}, None, "is blank"),
    ("api-url-not-url", ["validate"], {"KINSTA_API_URL": "not-a-url"}, None, "not an http:// or https:// URL"),
    ("api-url-ftp", ["trigger", "by-hand"], {"KINSTA_API_URL": "ftp://x/y"}, None, "not an http://"),
    ("api-url-empty", ["validate"], {"KINSTA_API_URL": ""}, None, "the URL is empty"),
    ("api-url-unclosed", ["validate"], {}, "version: 1\nkinsta: {api_url: '${UNCLOSED'}\n", "without its closing"),
    ("timeout-zero", ["validate", "--offline"], {}, "version: 1\nkinsta: {timeout: 0s}\n", "must be more than 0"),
    ("retention-huge", ["validate", "--offline"], {}, "version: 1\nretention: {older_than: 99999999999d}\n", "at most 36500d"),
    ("nested-default", ["validate", "--offline"], {}, "version: 1\nkinsta: {api_key: '${NOPE:-${ALSO_NOPE}}'}\n", "ALSO_NOPE is not set"),
    ("cron-jitter", ["validate", "--offline"], {}, JOB.format(schedule="{cron: '*/5 * * * *', jitter: 5m}"), "jitter must be shorter"),
    ("cron-never", ["validate", "--offline"], {}, JOB.format(schedule="{cron: '0 0 30 2 *'}"), "never fires"),
    ("alias-bomb", ["validate", "--offline"], {}, BOMB, "alias bomb"),
    ("alias-bomb-history", ["history"], {"KINSTA_SCHEDULER_DATABASE_URL": ""}, BOMB, "alias bomb"),
    ("memory-db", ["trigger", "by-hand", "--sandbox"], {"KINSTA_SCHEDULER_DATABASE_URL": "sqlite://"}, None, "in-memory"),
    ("memory-db-file", ["trigger", "by-hand", "--sandbox"], {"KINSTA_SCHEDULER_DATABASE_URL": "sqlite:///:memory:"}, None, "in-memory"),
    ("metrics-host", ["run", "--sandbox", "--metrics-port", "0", "--metrics-host", "no such host!"], {}, None, "cannot listen"),
    ("sandbox-only", ["trigger", "demo"], {}, "version: 1\njobs:\n  - {id: demo, sandbox_only: true, actions: [clear_cache]}\n", "runs only with --sandbox"),
    ("quarantine-path", ["quarantine", "add", "../etc", "1.0", "--reason", "x"], {}, None, "a plugin or theme's slug"),
    ("quarantine-version", ["quarantine", "add", "akismet", "1.0; drop", "--reason", "x"], {}, None, "a version such as"),
    ("quarantine-blank-reason", ["quarantine", "add", "akismet", "1.0", "--reason", "  "], {}, None, "printable characters"),
    ("quarantine-newline-reason", ["quarantine", "add", "akismet", "1.0", "--reason", "a\nb"], {}, None, "one line"),
    ("quarantine-no-reason", ["quarantine", "add", "akismet", "1.0"], {}, None, "Missing option '--reason'"),
    ("quarantine-kind", ["quarantine", "add", "akismet", "1.0", "--reason", "x", "--kind", "core"], {}, None, "'core' is not one of"),
    ("quarantine-release-unknown", ["quarantine", "release", "akismet", "9.9"], {}, None, "nothing quarantined as akismet 9.9"),
    ("quarantine-release-huge", ["quarantine", "release", "a" * 10_000], {}, None, "a plugin or theme's slug"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "env", "text", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in LISTED],
)
def test_each_listed_case_is_one_line_and_exit_2(
    tmp_path: Path,
    work: Workdir,
    args: list[str],
    env: dict[str, str],
    text: str | None,
    words: str,
) -> None:
    (tmp_path / CONFIG).write_text(BASE if text is None else text)
    environment = {**work.env(), **env}
    if not environment.get("KINSTA_SCHEDULER_DATABASE_URL"):
        environment.pop("KINSTA_SCHEDULER_DATABASE_URL", None)
    started = time.monotonic()
    outcome = run_main(args, environment, tmp_path)
    assert time.monotonic() - started < 20, outcome
    check(outcome, secrets=(KEY, "abc\u2019def"))
    assert outcome.code == 2, outcome
    assert words in outcome.err, outcome


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path, work: Workdir) -> None:
    (tmp_path / CONFIG).write_text(BASE)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for args in (["sandbox", "--port", port], ["run", "--sandbox", "--metrics-port", port]):
            outcome = run_main(args, work.env(), tmp_path)
            check(outcome)
            assert outcome.code == 2 and "Address already in use" in outcome.err, outcome


def test_a_key_kinsta_rejects_fails_online_validate(
    tmp_path: Path, work: Workdir, sandbox: SandboxServer
) -> None:
    (tmp_path / CONFIG).write_text(BASE)
    outcome = run_main(["validate"], work.env(KINSTA_API_URL=sandbox.url), tmp_path)
    check(outcome)
    assert outcome.code == 2 and "HTTP 401" in outcome.err, outcome
    good = run_main(
        ["validate"], work.env(KINSTA_API_URL=sandbox.url, KINSTA_API_KEY=DEFAULT_API_KEY), tmp_path
    )
    check(good, secrets=(DEFAULT_API_KEY,))
    assert good.code == 0, good


# --- fuzzed jobs.yaml -------------------------------------------------------------------------------

TEMPLATE = """version: {version}
timezone: {timezone}
kinsta:
  api_url: {api_url}
  timeout: {timeout}
  rate_limits: {{per_minute: {per_minute}, window: {window}}}
  polling: {{first_poll: {first_poll}, max_interval: {max_interval}, deadline: {deadline}}}
sandbox: {{sites: {sites}, seed: {seed}, time_scale: {time_scale}}}
retention: {{older_than: {older_than}, keep_last: {keep_last}}}
notify:
  slack: {slack}
  on: {on}
  heartbeat_url: {heartbeat}
daemon: {{shutdown_timeout: {shutdown}, heartbeat: {beat}, db_retry: {db_retry}}}
jobs:
  - id: {job_id}
    schedule: {{cron: {cron}, timezone: {zone}, jitter: {jitter}}}
    targets: {{sites: [{site}], environment: {environment}}}
    actions: [{action}]
    concurrency: {concurrency}
    timeout: {job_timeout}
    catch_up: {catch_up}
    misfire_grace: {grace}
  - id: second
    schedule: {{every: {every}, jitter: {jitter2}}}
    actions:
      - update_plugins: {{min_age: {min_age}, only: {only}, verify: {{paths: [{path}], status: {status}}}}}
      - prune_backups: {{keep: {keep}}}
      - fetch_logs: {{lines: {lines}}}
      - set_php_version: {{version: {php}}}
"""  # fmt: skip
NORMAL = {
    "version": "1", "timezone": "UTC", "api_url": "https://api.kinsta.com/v2", "timeout": "30s",
    "per_minute": "120", "window": "60s", "first_poll": "3s", "max_interval": "30s",
    "deadline": "30m", "sites": "6", "seed": "1", "time_scale": "1.0", "older_than": "90d",
    "keep_last": "20", "slack": "https://hooks.example/T/B", "on": "[failure, missed]",
    "heartbeat": "https://hc.example/ping", "shutdown": "30s", "beat": "15s", "db_retry": "2m",
    "job_id": "nightly", "cron": '"30 2 * * *"', "zone": "Europe/Amsterdam", "jitter": "5m",
    "site": '"*"', "environment": "live", "action": "clear_cache", "concurrency": "4",
    "job_timeout": "2h", "catch_up": "1h", "grace": "5m", "every": "6h", "jitter2": "1m",
    "min_age": "3d", "only": "minor", "path": "/", "status": "200", "keep": "4", "lines": "100",
    "php": '"8.3"',
}  # fmt: skip
HOSTILE = (
    "", "''", '" "', "~", "null", "0", "-1", "-0", "0x10", "0o17", "1_000", "+inf", ".nan",
    ".inf", "-.inf", "1e400", "99999999999999999999", "-99999999999999999999",
    "99999999999999999999d", "999999999w", "36500d", "36501d", "1.5ms", "0s", "0.0001s", "7",
    "true", "false", "on", "no", "[]", "{}", "[[[[[]]]]]", "{a: {b: {c: {}}}}", '"2026-13-45"',
    "2026-02-30", '"0 0 30 2 *"', '"0 0 31 4,6 *"', '"61 * * * *"', '"*/0 * * * *"',
    '"* * * * * *"', '"@daily"', '"0 0 29 2 *"', '"*/5 * * * *"', '"${NOPE}"',
    '"${NOPE:-${ALSO}}"', '"${UNCLOSED"', '"${A:-${B:-${C:-${D:-x}}}}"', '"${1x}"',
    '"http://[::1"', '"ftp://x/y"', '"not-a-url"', '"https://"', '"http://x:99999"',
    '"http://x:abc/"', '"https://ex ample.org"', '"\\u2019"', '"\\u202e"', '"\\r\\n"', '"\\t"',
    '"\\x7f"', '"' + "é" * 200 + '"', '"' + "a" * 5000 + '"', "Mars/Base", '"../../etc"',
    "!!binary aGVsbG8=", "!!python/object:os.system", "!!set {a}", "!!timestamp 2026-01-01",
    "&anchor 5", "*undefined", "<<: *x", "? complex", "|\n  block", "- a", ": :", "'unterminated",
    '"\\x00"', "2026-01-01T00:00:00", "{every: 1s}", "[clear_cache, clear_cache]",
)  # fmt: skip
TEXT_INSERTS = ("\t", "\x00", "\ufeff", "{", "]", ": ", "&a *a", "\r", "'", "\\", "%YAML 1.1\n")


def fuzzed_file(seed: int) -> str:
    rng = random.Random(seed)
    values = dict(NORMAL)
    for slot in rng.sample(sorted(values), rng.randint(1, 4)):
        values[slot] = rng.choice(HOSTILE)
    text = TEMPLATE.format(**values)
    if rng.random() < 0.2:  # break the text itself now and then
        cut = rng.randrange(len(text) + 1)
        text = text[:cut] + rng.choice(TEXT_INSERTS) + text[cut:]
    return text


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed-{s}") for s in range(220)])
def test_a_fuzzed_jobs_yaml_gives_exit_0_or_2_with_clear_lines(
    tmp_path: Path, work: Workdir, seed: int
) -> None:
    (tmp_path / CONFIG).write_text(fuzzed_file(seed), encoding="utf-8", errors="surrogatepass")
    env = work.env(SLACK="https://hooks.example/x")
    outcome = run_main(["validate", "--offline"], env, tmp_path)
    check(outcome)
    if outcome.code == 0:  # a valid file: its schedule arithmetic must hold at the extremes too
        for args in (
            ["plan", "--offline", "--count", "100", "--format", "json"],
            ["plan", "--offline"],
        ):
            check(run_main(args, env, tmp_path))
    else:
        assert all(line.startswith(CONFIG) for line in outcome.err.splitlines() if line), outcome


# --- fuzzed flags ------------------------------------------------------------------------------------

TIMES = (
    "7d", "0d", "1m", "99999999999999999999d", "999999d", "9999999w", "1h", "12 h", "-1d", "1y",
    "", " ", "d", "²d", "٣d", "2026-01-01", "2026-13-01", "0001-01-01", "9999-12-31T23:59:59",
    "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2026-01-01T25:00", "now",
    "\u202e7d", "7d\n", "1" * 5000 + "d", "2026-W01", "20260101", "2026-01-01T00:00:00Z",
)  # fmt: skip
IDS = ("1", "0", "-1", "99999999999999999999999", "9" * 5000, "²", "٣", "1.0", "", " 1", "1e3")
REVISIONS = ("garbage", "head", "base", "+1", "-1", "0001", "0001:0002", "", "heads", "@x")
NUMBERS = ("0", "1", "-1", "100", "101", "99999999999999999999", "1.5", "", "x", "٣")


def fuzzed_flags(seed: int) -> list[str]:
    rng = random.Random(seed)
    until = ["--until", rng.choice(TIMES)] if rng.random() < 0.5 else []
    events = rng.choice(("governor", "daemon", "notifications"))
    choices = (
        ["history", "--since", rng.choice(TIMES), *until],
        ["history", "--tasks", "--since", rng.choice(TIMES), "--limit", rng.choice(NUMBERS)],
        ["show", rng.choice(IDS), "--format", rng.choice(("json", "table"))],
        ["history", "prune", "--older-than", rng.choice(TIMES), "--dry-run"],
        ["history", events, "--since", rng.choice(TIMES)],
        ["plan", "--offline", "--count", rng.choice(NUMBERS)],
        ["plan", "--offline", "--at", rng.choice(TIMES)],
        ["db", rng.choice(("downgrade", "upgrade")), rng.choice(REVISIONS)],
    )
    return choices[rng.randrange(len(choices))]


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed-{s}") for s in range(90)])
def test_fuzzed_flags_give_exit_0_or_2_with_one_line(
    tmp_path: Path, work: Workdir, seed: int
) -> None:
    (tmp_path / CONFIG).write_text(BASE)
    args = fuzzed_flags(seed)
    database = work.database
    if args[0] == "db":  # migrations act on their own copy of the history
        database = f"sqlite:///{tmp_path / 'history.db'}"
    outcome = run_main(args, work.env(KINSTA_SCHEDULER_DATABASE_URL=database), tmp_path)
    check(outcome)


# --- fuzzed environment: URLs, keys, database URLs, paths ------------------------------------------

URLS = (
    "http://[::1", "ftp://x/y", "not-a-url", "", " ", "${UNCLOSED", "https://", "http:///x",
    "http://x:99999", "http://x:-1", "https://api.kinsta.com/v2", "http://127.0.0.1:1/v2",
    "https://ex ample.org", "https://\u2019.org", "javascript:alert(1)", "file:///etc/passwd",
    "HTTPS://API.KINSTA.COM/V2", "http://[::1]:8080/v2", "https://a\r\nb.org", "//no-scheme",
)  # fmt: skip
KEYS = (
    KEY + "\r", KEY + "\n", " " + KEY, "   ", "\t", KEY + "\u2019", "ключ", "a b", "\x7f", "x" * 5000,
    KEY + "\x00"[:0], "${NOPE}", "'", '"', "%s%n", "\u200b" + KEY,
)  # fmt: skip
DATABASES = (
    "sqlite://", "sqlite:///:memory:", "postgresql://u:p@[::1/x", "postgresql://u:p@h:abc/x",
    "postgresql://u:p@127.0.0.1:99999/x", "postgresql://u:p@127.0.0.1:1/x", "mysql://x/y",
    "garbage", " ", "sqlite:////nonexistent/dir/x.db", "sqlite:///", "postgresql+nope://x/y",
    "sqlite:///file:x?mode=memory&uri=true", "sqlite:////dev/null",
)  # fmt: skip
CONFIG_PATHS = (
    "",
    "/nonexistent/jobs.yaml",
    "/dev/null",
    "/",
    ".",
    "/proc/self/status",
    "\u2019.yaml",
)


def fuzzed_environment(seed: int) -> tuple[list[str], dict[str, str]]:
    rng = random.Random(seed)
    kind = rng.randrange(5)
    if kind == 0:
        variable = rng.choice(("KINSTA_API_URL", "KINSTA_SCHEDULER_SITE_BASE_URL"))
        return ["validate", "--offline"], {variable: rng.choice(URLS)}
    if kind == 1:
        return ["validate", "--offline"], {"KINSTA_API_KEY": rng.choice(KEYS)}
    if kind == 2:
        args = rng.choice((["history"], ["show", "1"], ["sites"], ["db", "current"]))
        return args, {"KINSTA_SCHEDULER_DATABASE_URL": rng.choice(DATABASES)}
    if kind == 3:
        return ["validate", "--offline"], {"KINSTA_SCHEDULER_CONFIG": rng.choice(CONFIG_PATHS)}
    return ["validate", "--offline"], {"KINSTA_COMPANY_ID": rng.choice(KEYS + URLS)}


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed-{s}") for s in range(90)])
def test_fuzzed_environment_gives_exit_0_or_2_without_echoing_a_key(
    tmp_path: Path, work: Workdir, seed: int
) -> None:
    (tmp_path / CONFIG).write_text(BASE)
    args, extra = fuzzed_environment(seed)
    secrets = (KEY, *(v for k, v in extra.items() if k == "KINSTA_API_KEY" and len(v) > 6))
    check(run_main(args, work.env(**extra), tmp_path), secrets=secrets)


# --- the real executable -----------------------------------------------------------------------------


def test_the_executable_gives_one_line_for_hostile_input(cli: Cli) -> None:
    (cli.cwd / CONFIG).write_text(BASE)
    cli.env["KINSTA_API_KEY"] = KEY
    for args, env, words in (
        (["history", "--since", "999999d"], {}, "out of range"),
        (["trigger", "by-hand"], {"KINSTA_API_KEY": "CANARY-KEY-123456\r"}, "ends with whitespace"),
        (["validate"], {"KINSTA_API_URL": "http://[::1"}, "KINSTA_API_URL"),
        (
            ["run"],
            {"KINSTA_SCHEDULER_CONFIG": str(cli.cwd / "data" / CONFIG)},
            "mount the directory",
        ),
    ):
        result = cli(*args, timeout=30) if not env else _with(cli, env, args)
        outcome = Outcome(result.code, result.out, result.err)
        check(outcome, secrets=(KEY, "CANARY-KEY-123456"))
        assert result.code == 2 and words in result.err, outcome


def _with(cli: Cli, env: dict[str, str], args: list[str]) -> Result:
    saved = dict(cli.env)
    cli.env.update(env)
    try:
        return cli(*args, timeout=30)
    finally:
        cli.env.clear()
        cli.env.update(saved)


def test_the_executable_refuses_an_alias_bomb_quickly(cli: Cli) -> None:
    (cli.cwd / CONFIG).write_text(BOMB)
    started = time.monotonic()
    result = cli("validate", "--offline", timeout=30)
    assert time.monotonic() - started < 15
    assert result.code == 2 and "alias bomb" in result.err and "Traceback" not in result.err


def test_the_executable_refuses_a_read_only_history_at_start(cli: Cli, tmp_path: Path) -> None:
    (cli.cwd / CONFIG).write_text(BASE)
    history = tmp_path / "ro.db"
    assert cli("--database", f"sqlite:///{history}", "db", "upgrade").code == 0
    started = time.monotonic()
    read_only = f"sqlite:///file:{history}?mode=ro&uri=true"
    result = cli("--database", read_only, "trigger", "by-hand", "--sandbox", timeout=60)
    assert time.monotonic() - started < 30
    assert result.code == 2, result
    assert result.err.strip().splitlines()[-1].startswith("error: the history database ")
    assert "cannot be written: attempt to write a readonly database" in result.err
