"""Checks that an environment still works after a change: its pages answer as expected, and PHP
logged no new fatal error. Used by safe updates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from scheduler.actions import ActionContext, Options
from scheduler.domain import Target

FATAL = "PHP Fatal error"
LOG_LINES = 500


class VerifyOptions(Options):
    paths: tuple[str, ...] = Field(("/",), min_length=1)
    status: int = Field(200, ge=100, le=599)
    contains: str | None = None

    @field_validator("paths")
    @classmethod
    def _paths(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if not value.startswith("/"):
                raise ValueError(f"{value!r}: a path starts with / (for example /shop/)")
        return values


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: tuple[str, ...]
    pages: tuple[Mapping[str, Any], ...]
    new_fatals: tuple[str, ...] = ()

    def summary(self) -> str:
        return "; ".join(self.problems) if self.problems else "site verified"

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": list(self.problems),
            "pages": [dict(p) for p in self.pages],
            "new_php_fatals": list(self.new_fatals),
        }


def fatal_lines(ctx: ActionContext, target: Target) -> set[str]:
    """The PHP fatal errors in the tail of the environment's error log."""
    text = ctx.client.logs.get(target.environment_id, "error", LOG_LINES)
    return {line for line in text.splitlines() if FATAL in line}


def check(
    ctx: ActionContext,
    target: Target,
    options: VerifyOptions,
    fatals_before: set[str] | None,
) -> Verdict:
    """Verify the environment: each path answers `status` with a non-blank body (containing
    `contains` when given); with `fatals_before`, no new PHP fatal error was logged."""
    problems: list[str] = []
    pages: list[dict[str, Any]] = []
    domain = target.primary_domain
    expected = options.status
    if domain is None:
        problems.append("the environment has no primary domain to check")
    else:
        for path in options.paths or ("/",):
            page = ctx.probe.get(domain, str(path))
            pages.append({"url": f"{domain}{path}", "status": page.status, "error": page.error})
            where = f"{domain}{path}"
            if page.status is None:
                problems.append(f"{where} did not answer: {page.error}")
            elif page.status != expected:
                problems.append(f"{where} answered {page.status}, expected {expected}")
            elif not page.body.strip():
                problems.append(f"{where} answered {page.status} with a blank page")
            elif options.contains and options.contains not in page.body:
                problems.append(f"{where} lacks the marker {options.contains!r}")
    new_fatals: tuple[str, ...] = ()
    if fatals_before is not None:
        new_fatals = tuple(sorted(fatal_lines(ctx, target) - fatals_before))
        if new_fatals:
            problems.append(f"{len(new_fatals)} new PHP fatal error(s) in the error log")
    return Verdict(not problems, tuple(problems), tuple(pages), new_fatals)
