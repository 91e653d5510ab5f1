"""A page before and after a change, compared: its title, its size, its HTML structure and how
long it takes to answer. Pure: the pages come in as text and times (verify.py fetches them).

The structure is the page's HTML tags counted by name, scripts, styles, metadata and the
insides of SVG drawings aside (a plugin update adds a script or an icon without changing the
page). Two pages' structures are as similar as their counts overlap (the weighted Jaccard
index: the sum of the smaller counts over the sum of the larger): 1.0 for the same tags in any
number of words, near 1 for a post more or less, low for a page rebuilt.

A page's answer time is the median of a few GETs (SAMPLES), so a first request that opens a
connection, or hits a cache emptied by the update, does not count alone. A page fails as
slower only when it got both `max_slowdown` times slower and slower by more than
`slowdown_floor_s`: on pages that answer in milliseconds, jitter alone makes such factors."""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import Any

COMPARISONS = ("title", "size", "structure", "response_time")
SAMPLES = 3  # GETs per page whose answer time is compared, before and after
# Tags that are not the page's visible structure (and change with any plugin's assets).
IGNORED_TAGS = frozenset({"script", "style", "link", "meta", "noscript", "template", "base"})
MAX_PERCENT = 10_000.0
MAX_FACTOR = 1_000.0
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_FACTOR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*x?\s*$")
# What `verify:` takes as written (jobs.yaml's JSON Schema), beside the parsers that read it.
COMPARE_SCHEMA = {
    "anyOf": [{"type": "boolean"}, {"type": "array", "items": {"enum": list(COMPARISONS)}}]
}
PERCENT_SCHEMA = {"type": "string", "pattern": _PERCENT.pattern, "description": 'such as "50%"'}
FACTOR_SCHEMA = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 1, "maximum": MAX_FACTOR},
        {"type": "string", "pattern": _FACTOR.pattern},
    ],
    "description": "times slower: 5 or 5x",
}


@dataclass(frozen=True)
class Check:
    """One check of a page (or of the environment, without `url`): what was seen before the
    update and after it, and what that means (`detail`, a problem when not `ok`)."""

    name: str
    ok: bool
    before: Any
    after: Any
    detail: str
    url: str | None = None

    def problem(self) -> str:
        return f"{self.url} {self.detail}" if self.url else self.detail

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "ok": self.ok,
            "before": self.before,
            "after": self.after,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Facts:
    """What a comparison needs of a page."""

    title: str | None
    size: int  # bytes
    tags: Mapping[str, int]  # tag name -> how many (see the module's docstring)
    elapsed_s: float | None  # the median answer time, None when not measured


@dataclass(frozen=True)
class Limits:
    """What the comparison tolerates (VerifyOptions, as the action reads them)."""

    compare: tuple[str, ...] = COMPARISONS
    max_size_change: float = 0.5  # a share of the size before, either way
    min_similarity: float = 0.5
    max_slowdown: float = 5.0
    slowdown_floor_s: float = 0.05


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.title: str | None = None
        self._in_title = False
        self._svg_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._svg_depth == 0 and tag not in IGNORED_TAGS:
            self.tags[tag] += 1
        if tag == "svg":
            self._svg_depth += 1
        elif tag == "title" and self._svg_depth == 0 and self.title is None:
            self._in_title, self.title = True, ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg_depth = max(0, self._svg_depth - 1)
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = f"{self.title or ''}{data}"


def facts(body: str, size: int, times_s: Sequence[float] = ()) -> Facts:
    """A page's facts from its text, its size in bytes and the times its GETs took."""
    reader = _Reader()
    reader.feed(body)
    reader.close()
    title = " ".join(reader.title.split()) if reader.title is not None else None
    elapsed = statistics.median(times_s) if times_s else None
    return Facts(title, size, dict(reader.tags), elapsed)


def similarity(before: Mapping[str, int], after: Mapping[str, int]) -> float:
    """How alike two pages' tag counts are, from 0 (nothing shared) to 1 (the same)."""
    names = before.keys() | after.keys()
    larger = sum(max(before.get(n, 0), after.get(n, 0)) for n in names)
    if larger == 0:
        return 1.0
    return sum(min(before.get(n, 0), after.get(n, 0)) for n in names) / larger


def compare(url: str, before: Facts, after: Facts, limits: Limits) -> list[Check]:
    """The checks `limits.compare` asks for, of the page at `url` before and after."""
    checks: dict[str, Callable[[], Check | None]] = {
        "title": lambda: title_check(before, after),
        "size": lambda: size_check(before, after, limits.max_size_change),
        "structure": lambda: structure_check(before, after, limits.min_similarity),
        "response_time": lambda: time_check(before, after, limits),
    }
    found = (checks[name]() for name in COMPARISONS if name in limits.compare)
    return [replace(check, url=url) for check in found if check is not None]


def title_check(before: Facts, after: Facts) -> Check:
    if before.title == after.title:
        return Check("title", True, before.title, after.title, "title unchanged")
    detail = f"title changed: {before.title!r} -> {after.title!r}"
    return Check("title", False, before.title, after.title, detail)


def size_check(before: Facts, after: Facts, max_change: float) -> Check:
    change = (after.size - before.size) / before.size if before.size else math.inf
    if after.size == before.size:
        change = 0.0
    sizes = f"({before.size} -> {after.size} bytes)"
    ok = abs(change) <= max_change
    said = "size grew" if change > 0 else "size shrank" if change < 0 else "size unchanged"
    detail = f"{said} {abs(change):.0%} {sizes}" if change else f"{said} {sizes}"
    if not ok:
        detail += f", beyond {max_change:.0%} (max_size_change)"
    return Check("size", ok, before.size, after.size, detail)


def structure_check(before: Facts, after: Facts, least: float) -> Check:
    alike = similarity(before.tags, after.tags)
    ok = alike >= least
    detail = f"tag similarity {alike:.2f}"
    if not ok:
        detail = f"structure changed: {detail}, below {least:.2f} (min_structure_similarity)"
    return Check("structure", ok, sum(before.tags.values()), sum(after.tags.values()), detail)


def time_check(before: Facts, after: Facts, limits: Limits) -> Check | None:
    """None when either time was not measured (the page did not answer as expected)."""
    if before.elapsed_s is None or after.elapsed_s is None:
        return None
    was, now = before.elapsed_s, after.elapsed_s
    factor = now / was if was > 0 else math.inf
    slow = factor > limits.max_slowdown and now - was > limits.slowdown_floor_s
    times = f"({was * 1000:.0f} ms -> {now * 1000:.0f} ms, median of {SAMPLES})"
    detail = f"answer time {factor:.1f}x {times}"
    if slow:
        detail = f"answered {factor:.1f}x slower {times}, beyond {limits.max_slowdown:g}x"
        detail += " (max_slowdown)"
    return Check("response_time", not slow, round(was, 4), round(now, 4), detail)


def parse_percent(value: object) -> float:
    """ "50%" -> 0.5 (above 0%, at most 10000%); ValueError otherwise."""
    found = _PERCENT.match(value) if isinstance(value, str) else None
    if found is None:
        raise ValueError(f'give a percentage such as "50%", not {_shown(value)}')
    percent = float(found[1])
    if not 0 < percent <= MAX_PERCENT:
        raise ValueError(f"a percentage must be above 0% and at most {MAX_PERCENT:g}%")
    return percent / 100


def parse_factor(value: object) -> float:
    """5, 5.5 or "5x" -> 5.0 (above 1, at most 1000); ValueError otherwise."""
    factor: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        factor = float(value) if math.isfinite(value) else None
    elif isinstance(value, str):
        found = _FACTOR.match(value)
        factor = float(found[1]) if found is not None else None
    if factor is None:
        raise ValueError(f"give a factor such as 5 (five times slower), not {_shown(value)}")
    if not 1 < factor <= MAX_FACTOR:
        raise ValueError(f"a factor must be above 1 and at most {MAX_FACTOR:g}")
    return factor


def comparisons(value: object) -> tuple[str, ...]:
    """`compare`: true (every comparison), false (none) or a list of them; ValueError else."""
    if value is True:
        return COMPARISONS
    if value is False:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"give true, false or a list of: {', '.join(COMPARISONS)}")
    unknown = [v for v in value if v not in COMPARISONS]
    if unknown:
        raise ValueError(f"unknown comparison {unknown[0]!r}: use any of {', '.join(COMPARISONS)}")
    return tuple(n for n in COMPARISONS if n in value)


def _shown(value: object) -> str:
    """A value as a message quotes it: a string quoted, anything else as YAML wrote it."""
    return repr(value[:40]) if isinstance(value, str) else str(value)[:40]
