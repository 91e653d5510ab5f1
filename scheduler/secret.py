"""The one type for credentials (API keys, webhook URLs, Slack's signing secret): repr and str
are masked, so a value printed, logged or put in an error by mistake says `***`. Its own module
so that settings of any section (the domain's, Slack's) can hold one; scheduler.domain
re-exports it."""

from __future__ import annotations


class Secret:
    """A value that must never be printed: repr and str are masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
