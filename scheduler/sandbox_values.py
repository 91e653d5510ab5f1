"""The sandbox's arrangement as values: bad releases and the updates it offers, as jobs.yaml's
`sandbox:` section and the sandbox's admin endpoints describe them (sandbox/releases.py and
sandbox/offers.py give them effect). Core, so that jobs.yaml is validated without loading the
sandbox."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxRelease:
    """A plugin or theme release the sandbox treats as bad (sandbox/releases.py): an environment
    that moves to it shows `effect` until that plugin or theme changes version again."""

    name: str
    version: str | None  # None: every version an update installs
    effect: str  # blank, fatal, php-fatals, changed, path:/PATH or slow:FACTOR


@dataclass(frozen=True)
class SandboxOffer:
    """The update the sandbox offers for a plugin or theme (sandbox/offers.py), on the
    environments of `sites` (names or globs) that have it; with `installed`, it is first put
    at that version (added where missing)."""

    name: str
    version: str | None  # None: no update on offer
    sites: tuple[str, ...] = ("*",)
    environment: str | None = None  # an environment's name; None: every environment
    installed: str | None = None
    kind: str | None = None  # "plugin" or "theme"; None: as installed, else as the catalogue has it


@dataclass(frozen=True)
class SandboxSettings:
    sites: int = 6
    seed: int = 1
    time_scale: float = 1.0
    duration_spread: float = 0.4  # how much operation durations vary (sandbox/durations.py)
    seeded_updates: bool = True  # False: the generated plugins and themes offer no update
    bad_releases: tuple[SandboxRelease, ...] = ()
    offers: tuple[SandboxOffer, ...] = ()


EFFECT_KINDS = ("blank", "fatal", "path:/PATH", "php-fatals", "slow:FACTOR", "changed")
SLOW_MAX = 100.0  # a bigger factor would only make tests wait


@dataclass(frozen=True)
class Effect:
    kind: str  # blank, fatal, path, php-fatals, slow or changed
    path: str = ""  # for path
    factor: float = 1.0  # for slow

    def __str__(self) -> str:
        if self.kind == "path":
            return f"path:{self.path}"
        if self.kind == "slow":
            return f"slow:{self.factor:g}"
        return self.kind

    @property
    def logs_fatal(self) -> bool:
        return self.kind in ("fatal", "php-fatals")

    def breaks(self, path: str) -> bool:
        """Whether a request for `path` answers WordPress's critical error page."""
        return self.kind == "fatal" or (self.kind == "path" and _normal(path) == _normal(self.path))

    @classmethod
    def parse(cls, text: str) -> Effect:
        """An effect from its text; ValueError saying what is accepted."""
        kind, colon, argument = str(text).strip().partition(":")
        if not colon and kind in ("blank", "fatal", "php-fatals", "changed"):
            return cls(kind)
        if kind == "path" and argument.startswith("/") and not any(c.isspace() for c in argument):
            return cls("path", path=argument)
        if kind == "slow":
            return cls("slow", factor=_factor(argument))
        raise ValueError(f"unknown effect {text!r}: use one of {', '.join(EFFECT_KINDS)}")


def _factor(text: str) -> float:
    try:
        factor = float(text)
    except ValueError:
        factor = math.nan
    if not 1 < factor <= SLOW_MAX:
        raise ValueError(f"slow:{text}: the factor is a number above 1, at most {SLOW_MAX:g}")
    return factor


def _normal(path: str) -> str:
    """The path without its query and trailing slash: /shop and /shop/?p=2 are one page."""
    bare = path.split("?", 1)[0].split("#", 1)[0]
    return bare.rstrip("/") or "/"


def parse_version(value: object, *, every: bool = False) -> str | None:
    """A version as given (None; with `every`, "*" too: every version); ValueError for a
    number, which YAML and JSON make of 2.0 (and of 2.10, 2.1)."""
    if value is None or (every and value == "*"):
        return None
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"{value!r} is read as a number, not a version: write it in quotes")
    if not value.strip() or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a version")
    return value
