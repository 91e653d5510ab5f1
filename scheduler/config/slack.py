"""jobs.yaml's `notify.slack_commands` (Slack slash commands on the daemon's HTTP server):

    notify:
      slack_commands:
        signing_secret: ${SLACK_SIGNING_SECRET}   # the Slack app's, never written in the file
        allow_users: [U0123ABCD]                  # Slack user ids, or "*" for anyone
        allow_channels: [C0456EFGH]               # channel ids, or "*" for any channel
        mutating: [clear-cache, restart-php]      # the changing commands turned on (none: off)
        commands:                                 # optional: narrower lists for one command
          restart-php: {allow_users: [U0123ABCD]}

Every problem is said without quoting the secret."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, field_validator

from scheduler.secret import Secret
from scheduler.slack.settings import ANYONE, COMMANDS, MUTATING, Allowed, SlackCommands

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,40}$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,40}$")


def _ids(values: list[str] | None, pattern: re.Pattern[str], what: str) -> list[str] | None:
    for value in values or []:
        if value != ANYONE and not pattern.match(value):
            shown = value[:40]
            raise ValueError(f"{shown!r} is not a Slack {what} id ({_EXAMPLES[what]}), nor '*'")
    if values is not None and not values:
        raise ValueError(f"list at least one {what} id (or '*' for any {what})")
    return values


_EXAMPLES = {"user": "U0123ABCD or W0123ABCD", "channel": "C0456EFGH, G... or D..."}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _CommandLists(_Strict):
    allow_users: list[str] | None = None
    allow_channels: list[str] | None = None

    @field_validator("allow_users")
    @classmethod
    def _users(cls, value: list[str] | None) -> list[str] | None:
        return _ids(value, USER_ID, "user")

    @field_validator("allow_channels")
    @classmethod
    def _channels(cls, value: list[str] | None) -> list[str] | None:
        return _ids(value, CHANNEL_ID, "channel")


class SlackCommandsModel(_Strict):
    signing_secret: str
    allow_users: list[str]
    allow_channels: list[str]
    mutating: list[str] = []
    commands: dict[str, _CommandLists] = {}

    @field_validator("signing_secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is blank (set it from the environment: ${SLACK_SIGNING_SECRET})")
        if any(not ("!" <= char <= "~") for char in value):
            raise ValueError("holds spaces or characters a Slack signing secret never has")
        return value

    @field_validator("allow_users")
    @classmethod
    def _users(cls, value: list[str]) -> list[str]:
        return _ids(value, USER_ID, "user") or []

    @field_validator("allow_channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        return _ids(value, CHANNEL_ID, "channel") or []

    @field_validator("mutating")
    @classmethod
    def _mutating(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in MUTATING:
                what = "changes nothing" if name in COMMANDS else "is not a command"
                raise ValueError(
                    f"{name[:40]!r} {what}: list among {', '.join(MUTATING)} the ones to turn on"
                )
        return value

    @field_validator("commands")
    @classmethod
    def _commands(cls, value: dict[str, _CommandLists]) -> dict[str, _CommandLists]:
        for name in value:
            if name not in COMMANDS:
                raise ValueError(f"{name[:40]!r} is not a command ({', '.join(COMMANDS)})")
        return value

    def settings(self) -> SlackCommands:
        everyone = Allowed(frozenset(self.allow_users), frozenset(self.allow_channels))
        narrower = tuple(
            (
                name,
                Allowed(
                    frozenset(lists.allow_users or everyone.users),
                    frozenset(lists.allow_channels or everyone.channels),
                ),
            )
            for name, lists in sorted(self.commands.items())
        )
        return SlackCommands(
            Secret(self.signing_secret), everyone, frozenset(self.mutating), narrower
        )
