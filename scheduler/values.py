"""Pure parsers for values jobs.yaml holds in more than one section (durations), shared by the
configuration and the actions' options models, so neither imports the other; and the checks of
values that come from jobs.yaml or the environment alike (e-mail addresses)."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
# An address as SMTP's MAIL FROM and RCPT TO carry it (local@domain), printable ASCII only.
_ADDRESS = re.compile(r"^[!#-'*+\-/-9=?A-Z^-~]+(?:\.[!#-'*+\-/-9=?A-Z^-~]+)*@[A-Za-z0-9.-]+")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION_S = 36_500 * 86_400.0  # 100 years: far enough, and far from datetime's year 9999


def _written_duration(value: object) -> object:
    """Text or a number, checked before pydantic, which would read true as 1.0 (`catch_up:
    true` was one second)."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return value
    shown = str(value).lower() if isinstance(value, bool) else repr(value)[:40]
    raise ValueError(f"{shown} is not a duration such as 30s, 5m, 6h or 3d")


# A duration as written ('30s', '5m', or seconds); a field validator turns it into seconds.
Duration = Annotated[
    str | float,
    BeforeValidator(_written_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": _DURATION.pattern},
                {"type": "number", "minimum": 0, "maximum": MAX_DURATION_S},
            ],
            "description": "a duration: 500ms, 30s, 5m, 6h, 3d, 1w, or a number of seconds",
        }
    ),
]


def parse_duration(value: str | float) -> float:
    """'30s', '5m', '6h', '3d', '1w' or a number of seconds -> seconds (0 to 100 years)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an integer too large for a float
            seconds = math.inf
    else:
        match = _DURATION.match(str(value)[:100])
        if not match:
            raise ValueError(f"{str(value)[:40]!r} is not a duration such as 30s, 5m, 6h or 3d")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2) or "s"]
    if math.isnan(seconds):
        raise ValueError("a duration must be a number")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION_S:
        raise ValueError("a duration can be at most 36500d (100 years)")
    return seconds


def parse_positive_duration(value: str | float) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be more than 0")
    return seconds


def token_problem(value: str) -> str | None:
    """What keeps `value` from being sent as a bearer token in an HTTP header, said without
    quoting it; None when it can be. A token is printable ASCII without spaces: a key pasted
    from a file often ends in a line break, one copied from a document may hold a curly quote."""
    if not value.strip():
        return "is blank"
    bad = [i for i, char in enumerate(value) if not ("!" <= char <= "~")]
    if not bad:
        return None
    char = value[bad[0]]
    if not char.isascii():
        what = "contains a non-ASCII character (a typographic quote or dash?)"
    elif char.isspace() and bad[0] == len(value.rstrip()):
        what = "ends with whitespace or a line break (pasted from a file?)"
    elif char.isspace():
        what = "starts with whitespace" if bad[0] == 0 else "contains whitespace"
    else:
        what = "contains a control character"
    return f"{what}; an API key is printable ASCII without spaces"


def address_problem(value: str) -> str | None:
    """Why `value` is not an e-mail address such as ops@example.com, or None when it is one."""
    if _ADDRESS.fullmatch(value) is None or len(value) > 254:
        return "is not an e-mail address such as ops@example.com"
    return None
