"""A report as one self-contained HTML page (Jinja2, autoescaped): the fleet summary, three
inline SVG charts (scheduler.charts), a section per site; the logo embedded as a data URI, no
script, nothing fetched. The same page is what WeasyPrint turns into the PDF (reports/pdf.py),
with a print style sheet for pages."""

from __future__ import annotations

import base64
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from scheduler import charts
from scheduler.branding import LOGO_TYPES
from scheduler.config.report import LogoRefused, read_logo
from scheduler.errors import BadInputError
from scheduler.reports.document import to_document
from scheduler.reports.model import Report

STATUS_COLOURS = {
    "succeeded": "#009E73",
    "rolled_back": "#E69F00",
    "failed": "#D55E00",
    "interrupted": "#CC79A7",
    "skipped": "#999999",
}
NONE = "\u2013"  # an en dash: nothing to show
BUDGET = "Request budget"  # then whose: the fleet's budget label (reports/model.BudgetScope)
CHART_TITLES = (
    "Updates per week",
    "Outcomes per action",
    f"{BUDGET}: requests per day, every API key",
)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("scheduler.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


_ENV = _environment()


def render_html(report: Report) -> str:
    document = to_document(report)
    zone = report.period.zone
    template = _ENV.get_template("report.html.j2")
    return template.render(
        doc=document,
        accent=report.branding.accent,
        logo=logo_uri(report.branding.logo),
        charts=report_charts(document),
        summaries=[site_summary(site) for site in document["sites"]],
        when=lambda value: local(value, zone),
        percent=percent,
    )


def report_charts(document: dict[str, Any]) -> list[Markup]:
    fleet = document["fleet"]
    weeks = fleet["updates_per_week"]
    week_labels = [datetime.fromisoformat(w["week"]).strftime("%d %b") for w in weeks]
    updates = charts.bars(
        CHART_TITLES[0], week_labels, [charts.Series("updates", [w["updates"] for w in weeks])]
    )
    outcomes = fleet["outcomes"]
    actions = list(outcomes)
    statuses = [s for s in STATUS_COLOURS if any(s in outcomes[a] for a in actions)]
    series = [
        charts.Series(s, [outcomes[a].get(s, 0) for a in actions], STATUS_COLOURS[s])
        for s in statuses
    ]
    per_action = charts.bars(CHART_TITLES[1], actions, series)
    days = fleet["per_day"]
    labels, requests = [d["day"][5:] for d in days], [d["requests"] for d in days]
    title = f"{BUDGET}: {fleet['budget']['label']}"
    budget = charts.line(title, labels, requests, name="requests")
    return [Markup(updates), Markup(per_action), Markup(budget)]  # noqa: S704 (escaped in charts)


def site_summary(site: dict[str, Any]) -> dict[str, Any]:
    """What the page shows in short where the JSON lists each item: backups per environment
    (how many, why, the last, how many kept), and only the verifications that failed."""
    kept: dict[str, int] = site["backups"]["kept"]
    rows: dict[str, dict[str, Any]] = {}
    for env in sorted({*kept, *(b["environment"] for b in site["backups"]["taken"])}):
        rows[env] = {"environment": env, "scheduled": 0, "before update": 0, "last": None}
        rows[env]["kept"] = kept.get(env)
    for backup in site["backups"]["taken"]:  # oldest first
        row = rows[backup["environment"]]
        row[backup["reason"]] += 1
        row["last"] = backup["at"]
    failed = [v for v in site["verifications"] if not v["ok"]]
    return {
        "backups": list(rows.values()),
        "failed_verifications": failed,
        "verifications_passed": len(site["verifications"]) - len(failed),
    }


def logo_uri(path: str | None) -> str | None:
    """The logo as a data URI (checked when jobs.yaml was loaded; read, and checked, again now:
    the file may have changed since)."""
    if path is None:
        return None
    media = LOGO_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")
    try:
        data = read_logo(Path(path))
    except LogoRefused as exc:
        raise BadInputError(f"report.logo {exc}") from exc
    return f"data:{media};base64,{base64.b64encode(data).decode('ascii')}"


def local(value: str | None, zone: tzinfo) -> str:
    if value is None:
        return NONE
    at = datetime.fromisoformat(value).astimezone(zone)
    return f"{at.year:04d}-{at.month:02d}-{at.day:02d} {at.hour:02d}:{at.minute:02d}"


def percent(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:.1f} %"
