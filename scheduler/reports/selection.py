"""Which sites a report covers, from what was asked: site names or patterns (as jobs.yaml's
targets match them), a label (sites whose live listing carries it), a company (the tasks of
its jobs). Pure: the caller reads history's known sites and the live listing."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from scheduler.domain import Config
from scheduler.errors import BadInputError, NotFoundError
from scheduler.reports.gather import Selection


def _close(given: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(given, sorted(known), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def resolve_sites(given: Collection[str], known: Collection[str]) -> tuple[str, ...] | None:
    """The sites named (exactly, or by a pattern such as shop-*); None when none was named.
    A name or pattern that matches no site history knows is an error."""
    if not given:
        return None
    found: set[str] = set()
    for wanted in given:
        matched = {s for s in known if fnmatchcase(s, wanted)}
        if not matched:
            raise NotFoundError(
                f"--site {wanted!r}: no such site in history{_close(wanted, known)}"
            )
        found |= matched
    return tuple(sorted(found))


def company_jobs(config: Config | None, company: str | None) -> frozenset[str] | None:
    """The ids of the company's jobs (None: no --company)."""
    if company is None:
        return None
    if config is None:
        raise BadInputError("--company needs jobs.yaml (its jobs say which company they serve)")
    names = [c.name for c in config.kinsta.all_companies()]
    if company not in names:
        raise NotFoundError(
            f"--company {company!r}: not in {config.path} (companies: {', '.join(names)})"
        )
    return frozenset(j.id for j in config.jobs if j.company == company)


def with_label(
    sites: tuple[str, ...] | None, label: str, labelled: Mapping[str, Collection[str]]
) -> tuple[str, ...]:
    """The sites (of `sites`, when named) whose live listing carries `label` (any case);
    `labelled`: site name -> its labels."""
    wanted = label.casefold()
    carrying = {s for s, labels in labelled.items() if wanted in {x.casefold() for x in labels}}
    if not carrying:
        every = sorted({x for labels in labelled.values() for x in labels})
        raise NotFoundError(f"--label {label!r}: no site carries it{_close(label, every)}")
    chosen = carrying if sites is None else carrying & set(sites)
    return tuple(sorted(chosen))


def selection(
    sites: tuple[str, ...] | None,
    jobs: frozenset[str] | None,
    asked: dict[str, Any],
    keys: Mapping[str, str] | None = None,
) -> Selection:
    """`keys`: the selected companies' names -> their keys' fingerprints (None: every key)."""
    return Selection(
        sites=sites,
        jobs=jobs,
        filters={k: v for k, v in asked.items() if v},
        keys=None if keys is None else frozenset(keys.values()),
        companies=None if keys is None else tuple(sorted(keys)),
    )
