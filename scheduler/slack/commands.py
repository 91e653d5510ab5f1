"""A slash command's form -> an Invocation; its text -> a Command, or the polite refusal to
answer instead (pure). The checks, in order: who and where (the command's allow-lists, or
the general ones for a word that is no command), whether the command exists, whether a
changing command is turned on, its arguments. Text that came from Slack is escaped before it
is echoed (a user's `<!channel>` stays text)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from scheduler.slack.settings import COMMANDS, CommandSpec, SlackCommands

MAX_TEXT_CHARS = 500
MAX_HISTORY = 20
DEFAULT_HISTORY = 5
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")  # a site, environment or job
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def esc(text: str) -> str:
    """Text for Slack's mrkdwn: &, < and > escaped, as Slack asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Invocation:
    """What Slack sent with a slash command (the fields read here)."""

    command: str  # the slash command's own name, "/kinsta"
    text: str
    user_id: str
    user_name: str
    channel_id: str
    response_url: str

    @classmethod
    def from_form(cls, body: bytes) -> Invocation | None:
        """From the form Slack posts; None when it is not one (no user, channel or URL)."""
        try:
            fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return None
        found = cls(
            command=fields.get("command", "/kinsta")[:40] or "/kinsta",
            text=fields.get("text", ""),
            user_id=fields.get("user_id", ""),
            user_name=fields.get("user_name", ""),
            channel_id=fields.get("channel_id", ""),
            response_url=fields.get("response_url", ""),
        )
        if not (found.user_id and found.channel_id and found.response_url):
            return None
        return found

    @property
    def requested_by(self) -> str:
        """Who asked, as history records it: "slack:U0123ABCD (alice)"."""
        name = _UNSAFE.sub("", self.user_name)[:60]
        user = _UNSAFE.sub("", self.user_id)[:40]
        return f"slack:{user}" + (f" ({name})" if name else "")

    def usage(self, spec: CommandSpec) -> str:
        return f"`{esc(self.command)} {spec.usage}`"


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...] = ()

    def arg(self, index: int, default: str | None = None) -> str | None:
        return self.args[index] if index < len(self.args) else default


def decide(settings: SlackCommands, asked: Invocation) -> Command | str:
    """The command to carry out, or the refusal to answer (already polite, already escaped)."""
    words = asked.text[:MAX_TEXT_CHARS].split()
    name = words[0].lower().replace("_", "-") if words else "help"
    spec = COMMANDS.get(name)
    refused = settings.allowed_for(name if spec else "").refuses(asked.user_id, asked.channel_id)
    slash = esc(asked.command)
    if refused == "user":
        return (
            f"Sorry, you may not use `{slash}{' ' + name if spec else ''}`. An operator can add "
            f"your Slack user id ({esc(asked.user_id)}) to notify.slack_commands in jobs.yaml."
        )
    if refused == "channel":
        return f"Sorry, `{slash}{' ' + name if spec else ''}` is not enabled in this channel."
    if spec is None:
        return f"Sorry, I don't know `{esc(name[:40])}`. `{slash} help` lists the commands."
    if not settings.enabled(name):
        return (
            f"`{slash} {name}` is turned off here: notify.slack_commands.mutating in jobs.yaml "
            "does not list it."
        )
    return _arguments(spec, words[1:], asked)


def _arguments(spec: CommandSpec, args: list[str], asked: Invocation) -> Command | str:
    if not spec.min_args <= len(args) <= spec.max_args:
        return f"Usage: {asked.usage(spec)}"
    if spec.name == "history" and len(args) == 2:
        count = args[1]
        if not (count.isascii() and count.isdigit() and 1 <= int(count) <= MAX_HISTORY):
            return f"Give N from 1 to {MAX_HISTORY}: {asked.usage(spec)}"
        return Command(spec.name, (args[0], str(int(count))))
    for arg in args:
        if not NAME.match(arg):
            return f"`{esc(arg[:40])}` is not a name I can look up. Usage: {asked.usage(spec)}"
    return Command(spec.name, tuple(args))


def help_text(settings: SlackCommands, asked: Invocation) -> str:
    """The commands this user may use in this channel, each with its usage."""
    lines = [
        f"{asked.usage(spec)}: {spec.summary}"
        for name, spec in COMMANDS.items()
        if settings.enabled(name)
        and settings.allowed_for(name).refuses(asked.user_id, asked.channel_id) is None
    ]
    off = [name for name in COMMANDS if not settings.enabled(name)]
    if off:
        lines.append(f"Turned off here: {', '.join(off)}.")
    return "\n".join(lines) or "There is no command you may use in this channel."
