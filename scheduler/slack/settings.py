"""The Slack commands and their settings as values (jobs.yaml's `notify.slack_commands` builds
them; scheduler.config validates against the names here). Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.secret import Secret

ANYONE = "*"  # in allow_users or allow_channels: every user, every channel


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str  # after the slash command's own name: "clear-cache SITE [ENV]"
    summary: str
    mutating: bool = False  # changes something at Kinsta: off unless `mutating` lists it
    min_args: int = 0
    max_args: int = 0


COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec(
            "status",
            "status SITE",
            "environments, PHP and WordPress versions, pending and held-back updates, the "
            "last outcome of each action",
            min_args=1,
            max_args=1,
        ),
        CommandSpec(
            "clear-cache",
            "clear-cache SITE [ENV]",
            "clear the site cache of one environment (live by default)",
            mutating=True,
            min_args=1,
            max_args=2,
        ),
        CommandSpec(
            "restart-php",
            "restart-php SITE [ENV]",
            "restart PHP on one environment (live by default)",
            mutating=True,
            min_args=1,
            max_args=2,
        ),
        CommandSpec(
            "trigger",
            "trigger JOB [SITE]",
            "run a job of jobs.yaml now, on one site when named",
            mutating=True,
            min_args=1,
            max_args=2,
        ),
        CommandSpec(
            "history", "history SITE [N]", "the site's last N runs (5)", min_args=1, max_args=2
        ),
        CommandSpec("next", "next", "the next fire time of each scheduled job"),
        CommandSpec("help", "help", "what you may use here"),
    )
}
MUTATING = tuple(name for name, spec in COMMANDS.items() if spec.mutating)


@dataclass(frozen=True)
class Allowed:
    """Who may use a command, and where: Slack user ids (U..., W...) and channel ids (C..., G...,
    D...), or ANYONE."""

    users: frozenset[str]
    channels: frozenset[str]

    def refuses(self, user_id: str, channel_id: str) -> str | None:
        """ "user" or "channel" when that one is not allowed (the user first), else None."""
        if ANYONE not in self.users and user_id not in self.users:
            return "user"
        if ANYONE not in self.channels and channel_id not in self.channels:
            return "channel"
        return None


@dataclass(frozen=True)
class SlackCommands:
    """`notify.slack_commands`: without it, POST /slack/commands does not exist."""

    signing_secret: Secret
    allowed: Allowed  # every command's lists, unless `per_command` narrows them
    mutating: frozenset[str] = frozenset()  # the changing commands turned on
    per_command: tuple[tuple[str, Allowed], ...] = ()

    def allowed_for(self, command: str) -> Allowed:
        return dict(self.per_command).get(command, self.allowed)

    def enabled(self, command: str) -> bool:
        spec = COMMANDS.get(command)
        return spec is not None and (not spec.mutating or command in self.mutating)
