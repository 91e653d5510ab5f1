"""The pure parts of Slack commands: the signature (Slack's own published example), the window
and replays on a given clock, who may use what where, the text of a command, the settings in
jobs.yaml, and the route table they are served from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.config import parse
from scheduler.domain import CronSchedule, IntervalSchedule, Job, TargetSelector
from scheduler.errors import ConfigError
from scheduler.httpd import Request, Response, Routes
from scheduler.secret import Secret
from scheduler.slack import replies, signing
from scheduler.slack.commands import Command, Invocation, decide, help_text
from scheduler.slack.settings import ANYONE, MUTATING, Allowed, SlackCommands

# Slack's example in "Verifying requests from Slack" (api.slack.com/authentication/verifying-requests-from-slack)
SLACK_SECRET = Secret("8f742231b10e8888abcd99yyyzzz85a5")
SLACK_TIMESTAMP = "1531420618"
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
    b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
    b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
    b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
SENT_AT = float(SLACK_TIMESTAMP)


def _headers(stamp: str = SLACK_TIMESTAMP, sig: str = SLACK_SIGNATURE) -> dict[str, str]:
    return {signing.TIMESTAMP_HEADER: stamp, signing.SIGNATURE_HEADER: sig}


def test_the_signature_is_slacks() -> None:
    assert signing.signature(SLACK_SECRET, SLACK_TIMESTAMP, SLACK_BODY) == SLACK_SIGNATURE
    assert signing.problem(SLACK_SECRET, _headers(), SLACK_BODY, SENT_AT + 1) is None


@pytest.mark.parametrize(
    ("headers", "body", "now_s", "says"),
    [
        ({}, SLACK_BODY, SENT_AT, "unsigned"),
        (_headers(stamp="soon"), SLACK_BODY, SENT_AT, "bad Slack timestamp"),
        (_headers(), SLACK_BODY + b"&text=rm", SENT_AT, "bad Slack signature"),
        (_headers(sig="v0=" + "0" * 64), SLACK_BODY, SENT_AT, "bad Slack signature"),
        (_headers(sig="v0=ä"), SLACK_BODY, SENT_AT, "bad Slack signature"),
        (_headers(), SLACK_BODY, SENT_AT + 301, "stale"),
        (_headers(), SLACK_BODY, SENT_AT - 301, "stale"),
    ],
)
def test_requests_that_are_not_slacks_or_not_fresh(
    headers: dict[str, str], body: bytes, now_s: float, says: str
) -> None:
    found = signing.problem(SLACK_SECRET, headers, body, now_s)
    assert found is not None and says in found
    assert SLACK_SECRET.reveal() not in found


def test_five_minutes_either_way_is_fresh() -> None:
    for now_s in (SENT_AT + 300, SENT_AT - 300):
        assert signing.problem(SLACK_SECRET, _headers(), SLACK_BODY, now_s) is None


def test_a_signature_is_accepted_once_within_the_window() -> None:
    guard = signing.ReplayGuard()
    assert guard.first_time(_headers(), SENT_AT)
    assert not guard.first_time(_headers(), SENT_AT + 299)
    assert guard.first_time(_headers(sig="v0=other"), SENT_AT)
    assert guard.first_time(_headers(stamp="1531421000", sig="v0=later"), SENT_AT + 700)
    assert len(guard) == 1  # what the window no longer accepts is forgotten


SETTINGS = SlackCommands(
    Secret("s3cret-s3cret"),
    Allowed(frozenset({"U0ALICE", "U0BOB"}), frozenset({"C0OPS"})),
    frozenset({"clear-cache"}),
    (("clear-cache", Allowed(frozenset({"U0ALICE"}), frozenset({ANYONE}))),),
)


def _asked(text: str, user: str = "U0ALICE", channel: str = "C0OPS") -> Invocation:
    return Invocation("/kinsta", text, user, "alice", channel, "https://hooks.slack.com/x")


@pytest.mark.parametrize(
    ("text", "user", "channel", "decided"),
    [
        ("status meadow-1", "U0BOB", "C0OPS", Command("status", ("meadow-1",))),
        ("", "U0BOB", "C0OPS", Command("help")),
        ("clear_cache meadow-1 staging", "U0ALICE", "C0ELSE", None),  # its own lists: any channel
        ("history meadow-1 07", "U0BOB", "C0OPS", Command("history", ("meadow-1", "7"))),
    ],
)
def test_commands_allowed(text: str, user: str, channel: str, decided: Command | None) -> None:
    expected = decided or Command("clear-cache", ("meadow-1", "staging"))
    assert decide(SETTINGS, _asked(text, user, channel)) == expected


@pytest.mark.parametrize(
    ("text", "user", "channel", "says"),
    [
        ("status meadow-1", "U0EVE", "C0OPS", "you may not use `/kinsta status`"),
        ("status meadow-1", "U0BOB", "C0ELSE", "`/kinsta status` is not enabled in this channel"),
        ("clear-cache meadow-1", "U0BOB", "C0OPS", "you may not use `/kinsta clear-cache`"),
        ("frobnicate", "U0EVE", "C0OPS", "you may not use `/kinsta`"),  # lists before names
        ("frobnicate", "U0BOB", "C0OPS", "I don't know `frobnicate`"),
        ("restart-php meadow-1", "U0BOB", "C0OPS", "`/kinsta restart-php` is turned off here"),
        ("status", "U0BOB", "C0OPS", "Usage: `/kinsta status SITE`"),
        ("history meadow-1 0", "U0BOB", "C0OPS", "Give N from 1 to 20"),
        ("history meadow-1 99", "U0BOB", "C0OPS", "Give N from 1 to 20"),
        ("status <@U0BOB>", "U0BOB", "C0OPS", "`&lt;@U0BOB&gt;` is not a name"),
        ("status meadow-*", "U0BOB", "C0OPS", "`meadow-*` is not a name"),
    ],
)
def test_refusals_are_polite_and_escaped(text: str, user: str, channel: str, says: str) -> None:
    decided = decide(SETTINGS, _asked(text, user, channel))
    assert isinstance(decided, str) and says in decided, decided
    assert decided.startswith(("Sorry", "`", "Usage", "Give"))


def test_help_lists_what_this_user_may_use_here() -> None:
    bob = help_text(SETTINGS, _asked("help", "U0BOB"))
    assert "`/kinsta status SITE`" in bob and "clear-cache" not in bob.split("Turned off")[0]
    alice = help_text(SETTINGS, _asked("help", "U0ALICE"))
    assert "`/kinsta clear-cache SITE [ENV]`" in alice
    assert alice.endswith("Turned off here: restart-php, trigger.")


def test_who_asked_is_recorded_without_what_could_be_markup() -> None:
    asked = Invocation("/kinsta", "", "U0ALICE", "ali[bold]ce <x>", "C0OPS", "https://x.y")
    assert asked.requested_by == "slack:U0ALICE (aliboldcex)"
    form = b"user_id=U1&channel_id=C1&response_url=https%3A%2F%2Fx.y&text=next"
    parsed = Invocation.from_form(form)
    assert parsed is not None and parsed.text == "next" and parsed.command == "/kinsta"
    assert Invocation.from_form(b"text=next") is None
    assert Invocation.from_form(b"\xff\xfe") is None


YAML = """version: 1
notify:
  slack_commands:
    signing_secret: ${SLACK_SIGNING_SECRET}
    allow_users: [%s]
    allow_channels: ["*"]
    mutating: [%s]
    commands: {%s}
"""


def test_settings_from_jobs_yaml() -> None:
    text = YAML % ("U0ALICE, W0BOB", "clear-cache, trigger", "trigger: {allow_users: [U0ALICE]}")
    config = parse(text, "jobs.yaml", {"SLACK_SIGNING_SECRET": "abc123"})
    settings = config.notify.slack_commands
    assert settings is not None and settings.signing_secret == Secret("abc123")
    assert settings.allowed_for("status").users == {"U0ALICE", "W0BOB"}
    assert settings.allowed_for("trigger") == Allowed(frozenset({"U0ALICE"}), frozenset({"*"}))
    assert settings.enabled("trigger") and not settings.enabled("restart-php")
    assert parse("version: 1\n", "jobs.yaml", {}).notify.slack_commands is None


@pytest.mark.parametrize(
    ("users", "mutating", "commands", "env", "says"),
    [
        ("alice", "", "", {"SLACK_SIGNING_SECRET": "abc"}, "5: notify.slack_commands.allow_users"),
        ("", "", "", {"SLACK_SIGNING_SECRET": "abc"}, "list at least one user id"),
        ("U0A", "status", "", {"SLACK_SIGNING_SECRET": "abc"}, "'status' changes nothing"),
        ("U0A", "", "reboot: {}", {"SLACK_SIGNING_SECRET": "abc"}, "'reboot' is not a command"),
        ("U0A", "", "", {}, "environment variable SLACK_SIGNING_SECRET is not set"),
        ("U0A", "", "", {"SLACK_SIGNING_SECRET": "abc def"}, "signing_secret: holds spaces"),
    ],
)
def test_bad_settings_name_the_file_line_and_field(
    users: str, mutating: str, commands: str, env: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(YAML % (users, mutating, commands), "jobs.yaml", env)
    assert says in str(caught.value) and "jobs.yaml:" in str(caught.value)
    assert "abc def" not in str(caught.value)


def test_the_readmes_example_is_valid() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Managing sites from Slack\n", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse("version: 1\n" + block, "jobs.yaml", {"SLACK_SIGNING_SECRET": "x1y2"})
    settings = config.notify.slack_commands
    assert settings is not None and settings.mutating == set(MUTATING)
    assert settings.allowed_for("restart-php").users == {"U0123ABCD"}
    assert settings.allowed_for("status").users == {"U0123ABCD", "U0456EFGH"}


def test_next_lists_scheduled_jobs_soonest_first_in_their_zone() -> None:
    now = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    jobs = [
        Job("later", CronSchedule("30 2 * * *", "Europe/Amsterdam"), TargetSelector(), ()),
        Job("sooner", IntervalSchedule(3600), TargetSelector(), ()),
        Job("by-hand", None, TargetSelector(), ()),
    ]
    text = replies.upcoming(jobs, now)
    assert text.splitlines() == [
        "• sooner: 2026-03-28 13:00 (UTC)",
        "• later: 2026-03-29 03:00 (Europe/Amsterdam) [gap: 02:30 does not exist on 2026-03-29 "
        "(clocks go forward); it runs at the first valid instant after]",
        "Run only when triggered: by-hand",
    ]


def test_routes_answer_unknown_paths_and_methods_and_hide_failures() -> None:
    def boom(_request: Request) -> Response:
        raise RuntimeError("secret detail")

    routes = Routes().add("GET", "/ok", lambda _r: Response.text(200, "ok")).add("POST", "/x", boom)
    get = Request("GET", "/ok", "", {})
    assert routes.dispatch(get).status == 200
    assert routes.dispatch(Request("GET", "/nope", "", {})).status == 404
    wrong = routes.dispatch(Request("POST", "/ok", "", {}))
    assert wrong.status == 405 and wrong.headers == {"Allow": "GET"}
    failed = routes.dispatch(Request("POST", "/x", "", {}))
    assert failed.status == 500 and b"secret detail" not in failed.body
    with pytest.raises(ValueError, match="served twice"):
        routes.add("GET", "/ok", boom)
