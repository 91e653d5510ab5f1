"""Checks that an environment still works after a change: its pages answer as expected, look
as they did before it (title, size, structure: pages.py) and answer about as fast, and PHP
logged no new fatal error. Used by safe updates: `baseline` right before the update, `check`
after it (and after each step of a culprit's isolation, against the same baseline)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, WithJsonSchema, field_validator

from scheduler.actions import ActionContext, Options, pages
from scheduler.actions.pages import Check
from scheduler.domain import Target
from scheduler.values import Duration, parse_duration

if TYPE_CHECKING:
    from scheduler.kinsta.probe import Page

FATAL = "PHP Fatal error"
LOG_LINES = 500


class VerifyOptions(Options):
    paths: tuple[str, ...] = Field(("/",), min_length=1)
    status: int = Field(200, ge=100, le=599)
    contains: str | None = None
    # true: all of them; false: none
    compare: Annotated[tuple[str, ...], WithJsonSchema(pages.COMPARE_SCHEMA)] = pages.COMPARISONS
    # a share once validated ("50%" in jobs.yaml)
    max_size_change: Annotated[float, WithJsonSchema(pages.PERCENT_SCHEMA)] = Field(
        0.5, json_schema_extra={"default": "50%"}
    )
    min_structure_similarity: float = Field(0.5, ge=0.0, le=1.0)
    max_slowdown: Annotated[float, WithJsonSchema(pages.FACTOR_SCHEMA)] = 5.0  # times slower
    slowdown_floor: Duration = 0.05  # seconds once validated

    @field_validator("paths")
    @classmethod
    def _paths(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if not value.startswith("/"):
                raise ValueError(f"{value!r}: a path starts with / (for example /shop/)")
        return values

    @field_validator("compare", mode="before")
    @classmethod
    def _compare(cls, value: object) -> tuple[str, ...]:
        return pages.comparisons(value)

    @field_validator("max_size_change", mode="before")
    @classmethod
    def _size(cls, value: object) -> float:
        return pages.parse_percent(value)

    @field_validator("min_structure_similarity", mode="before")
    @classmethod
    def _similarity(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("give a number from 0 to 1, such as 0.5")
        return value

    @field_validator("max_slowdown", mode="before")
    @classmethod
    def _slowdown(cls, value: object) -> float:
        return pages.parse_factor(value)

    @field_validator("slowdown_floor")
    @classmethod
    def _floor(cls, value: str | float) -> float:
        return parse_duration(value)

    def limits(self) -> pages.Limits:
        return pages.Limits(
            self.compare,
            self.max_size_change,
            self.min_structure_similarity,
            self.max_slowdown,
            float(self.slowdown_floor),
        )


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: tuple[str, ...]
    pages: tuple[Mapping[str, Any], ...]
    new_fatals: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()

    def summary(self) -> str:
        return "; ".join(self.problems) if self.problems else "site verified"

    def failed(self) -> list[str]:
        """The names of the checks that failed, each once."""
        return list(dict.fromkeys(c.name for c in self.checks if not c.ok))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": list(self.problems),
            "pages": [dict(p) for p in self.pages],
            "new_php_fatals": list(self.new_fatals),
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass(frozen=True)
class Baseline:
    """The pages as they answered right before the update, by path: their status, and the
    facts of those that answered as expected (the only ones compared afterwards)."""

    statuses: Mapping[str, int | None]
    facts: Mapping[str, pages.Facts]


def fatal_lines(ctx: ActionContext, target: Target) -> set[str]:
    """The PHP fatal errors in the tail of the environment's error log."""
    text = ctx.client.logs.get(target.environment_id, "error", LOG_LINES)
    return {line for line in text.splitlines() if FATAL in line}


def baseline(ctx: ActionContext, target: Target, options: VerifyOptions) -> Baseline | None:
    """The pages before the update, for `check` to compare with (None: nothing compared)."""
    domain = target.primary_domain
    if not options.compare or domain is None:
        return None
    statuses: dict[str, int | None] = {}
    found: dict[str, pages.Facts] = {}
    for path in options.paths:
        page, times = _visit(ctx, domain, path, options, "response_time" in options.compare)
        statuses[path] = page.status
        if _answered(page, options):
            found[path] = pages.facts(page.body, page.size, times)
    return Baseline(statuses, found)


def check(
    ctx: ActionContext,
    target: Target,
    options: VerifyOptions,
    fatals_before: set[str] | None,
    before: Baseline | None = None,
) -> Verdict:
    """Verify the environment: each path answers `status` with a non-blank body (containing
    `contains` when given) and, with a baseline `before`, compares as `options` say with how
    it answered then; with `fatals_before`, no new PHP fatal error was logged."""
    checks: list[Check] = []
    seen: list[dict[str, Any]] = []
    domain = target.primary_domain
    if domain is None:
        checks.append(
            Check("domain", False, None, None, "the environment has no primary domain to check")
        )
    else:
        for path in options.paths:
            found, page = _check_page(ctx, domain, path, options, before)
            checks.extend(found)
            seen.append({"url": f"{domain}{path}", "status": page.status, "error": page.error})
    new_fatals: tuple[str, ...] = ()
    if fatals_before is not None:
        now = fatal_lines(ctx, target)
        new_fatals = tuple(sorted(now - fatals_before))
        detail = f"{len(new_fatals) or 'no'} new PHP fatal error(s) in the error log"
        checks.append(Check("php_fatals", not new_fatals, len(fatals_before), len(now), detail))
    problems = tuple(c.problem() for c in checks if not c.ok)
    return Verdict(not problems, problems, tuple(seen), new_fatals, tuple(checks))


def _check_page(
    ctx: ActionContext, domain: str, path: str, options: VerifyOptions, before: Baseline | None
) -> tuple[list[Check], Page]:
    where = f"{domain}{path}"
    then = before.facts.get(path) if before is not None else None
    timed = then is not None and then.elapsed_s is not None
    page, times = _visit(ctx, domain, path, options, timed)
    found = _answers(where, page, options, before.statuses.get(path) if before else None)
    if then is not None and _answered(page, options):
        now = pages.facts(page.body, page.size, times)
        found.extend(pages.compare(where, then, now, options.limits()))
    return found, page


def _visit(
    ctx: ActionContext, domain: str, path: str, options: VerifyOptions, timed: bool
) -> tuple[Page, list[float]]:
    """GET the page; `timed`, a page that answered as expected is fetched again, SAMPLES
    times in all, for the times of those that answered alike."""
    page = ctx.probe.get(domain, path)
    if not timed or not _answered(page, options):
        return page, []
    times = [page.elapsed_s]
    for _ in range(pages.SAMPLES - 1):
        again = ctx.probe.get(domain, path)
        if again.status == page.status:
            times.append(again.elapsed_s)
    return page, times


def _answered(page: Page, options: VerifyOptions) -> bool:
    """The page answered the expected status with a non-blank body."""
    return page.status == options.status and bool(page.body.strip())


def _answers(
    where: str, page: Page, options: VerifyOptions, status_before: int | None
) -> list[Check]:
    """The status, a non-blank body, the marker: each checked once the one before passed."""
    expected = options.status
    if page.status is None:
        detail = f"did not answer: {page.error}"
        return [Check("status", False, status_before, None, detail, where)]
    if page.status != expected:
        detail = f"answered {page.status}, expected {expected}"
        return [Check("status", False, status_before, page.status, detail, where)]
    found = [Check("status", True, status_before, page.status, f"answered {expected}", where)]
    if not page.body.strip():
        detail = f"answered {page.status} with a blank page"
        return [*found, Check("content", False, None, page.size, detail, where)]
    found.append(Check("content", True, None, page.size, "not blank", where))
    if options.contains:
        has = options.contains in page.body
        detail = f"{'has' if has else 'lacks'} the marker {options.contains!r}"
        found.append(Check("contains", has, None, has, detail, where))
    return found
