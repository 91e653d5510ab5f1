"""The dashboard: five read-only pages on the daemon's HTTP server, each with a JSON twin at
the same path (`?format=json`) holding what the CLI's `--format json` gives for the same
question (scheduler.views builds both):

  /              fleet            `sites --page N --format json` (a page of the sites the
                                  filters keep: `page`, `per_page`, `q`, `status`; `label` and
                                  `company` from the daemon's site list)
  /runs          runs by job      `history --since Nd --limit 2000 --format json`
  /runs/{id}     one run          `show ID --format json`
  /schedule      next fire times  `plan --offline --format json` (a page view sends no request
                                  to Kinsta: targets are not resolved)
  /budget        rate budget      `history requests` and `history governor` over the last hours

Pages are rendered on the server (Jinja2, autoescaped), with inline CSS and SVG charts
(scheduler.charts): nothing is fetched from elsewhere and no script runs; the runs page
refreshes itself while a run is running."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import structlog

from scheduler import charts, render
from scheduler.blackouts import Blackout, FixedBlackout
from scheduler.domain import Config, CronSchedule
from scheduler.errors import NotFoundError
from scheduler.fleetquery import STATUSES
from scheduler.history import HistoryStore, RunFilter
from scheduler.httpd import Request, Response, Routes, number
from scheduler.views import documents
from scheduler.views.plan import plan_rows
from scheduler.web import budget, fleet, timeline, times
from scheduler.web.auth import Gate, is_loopback

log = structlog.get_logger("scheduler.web")

HTML = "text/html; charset=utf-8"
RUNS_LIMIT = 2000  # runs on the runs page's strips (a month of a job every 15 min is 2,880)
PLAN_COUNT = 5
GOVERNOR_LIMIT = 500
REFRESH_S = 5  # the runs page reloads itself this often while a run is running
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Page:
    template: str
    context: dict[str, Any]
    document: Any  # the JSON twin
    headers: Mapping[str, str] = field(default_factory=dict)  # the JSON twin's, besides


@dataclass
class Sources:
    """What the pages read besides history: jobs.yaml as the daemon holds it now, the time,
    each site's company and labels (the daemon's last site list), each key's company."""

    config: Callable[[], Config]
    now: Callable[[], datetime]
    facts: Callable[[], Mapping[str, fleet.SiteFact]] = dict
    companies: Callable[[], Mapping[str, str]] = dict  # key fingerprint -> company name
    extra: dict[str, Any] = field(default_factory=dict)


class Dashboard:
    def __init__(
        self,
        store: HistoryStore,
        sources: Sources,
        token: str | None = None,
        hosts: str | None = None,
    ) -> None:
        self._store = store
        self._sources = sources
        self._gate = Gate(token, hosts)
        self._env = jinja2.Environment(
            loader=jinja2.PackageLoader("scheduler.web", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self._env.filters.update(times.filters())
        self._env.globals["style"] = (
            resources.files("scheduler.web").joinpath("static/style.css").read_text()
        )

    def add_routes(self, routes: Routes, host: str | None = None) -> Routes:
        """The pages on `routes`; a warning when `host` is reachable from elsewhere and no
        token guards the pages (history names every site and its failures)."""
        if host is not None and not is_loopback(host) and not self._gate.guarded:
            log.warning(
                "dashboard.exposed_without_token",
                host=host,
                hint="set KINSTA_SCHEDULER_HTTP_TOKEN or bind to 127.0.0.1",
            )
        pages: dict[str, Callable[[Request], Page]] = {
            "/": self.fleet_page,
            "/runs": self.runs_page,
            "/runs/{run_id}": self.run_page,
            "/schedule": self.schedule_page,
            "/budget": self.budget_page,
        }
        for path, page in pages.items():
            routes.add("GET", path, self._serve(page))
        return routes

    def _serve(self, page: Callable[[Request], Page]) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            refused = self._gate.check(request)
            if refused is not None:
                return refused
            try:
                found = page(request)
            except NotFoundError as exc:
                return Response(404, f"{exc}\n".encode(), headers=HEADERS)
            if request.arguments().get("format") == "json":
                # Compact: the pure-Python encoder that `indent` needs takes longer than the
                # fleet's whole read (a 1,000-site document is 5 MB); `jq .` indents it.
                body = json.dumps(found.document, separators=(",", ":")).encode()
                headers = HEADERS | dict(found.headers)
                return Response(200, body, "application/json", headers=headers)
            html = self._env.get_template(found.template).render(found.context, times=self._times())
            return Response(200, html.encode(), HTML, headers=HEADERS)

        return handler

    def _times(self) -> times.Times:
        """How this page shows times: the daemon's clock now, in jobs.yaml's `timezone`."""
        return times.Times.of(self._sources.now(), self._sources.config().timezone)

    def fleet_page(self, request: Request) -> Page:
        """A page of the sites the filters keep (100 by default); the JSON twin is that page,
        as `sites --page N --format json` gives it, its headers saying how many sites there
        are (X-Total-Count) and where the next page is (Link)."""
        where = fleet.FleetFilter.from_query(request.arguments())
        facts = self._sources.facts()
        page = where.page or 1
        rows, found = documents.fleet_document(self._store, where.site_query(facts, page=page))
        pages = fleet.Pages.of(page, where.per_page, found.total)
        labels, companies = fleet.choices(facts)
        unknown = fleet.SiteFact()
        sites = [fleet.summarise(row, facts.get(row["site"], unknown)) for row in rows]
        context = {
            "page": "fleet",
            "sites": sites,
            "columns": fleet.action_columns(sites),
            "where": where,
            "labels": labels,
            "companies": companies,
            "statuses": STATUSES,
            "counts": found.counts,
            "total": found.total,
            "pages": pages,
            "default_per_page": documents.PER_PAGE,
        }
        return Page("fleet.html", context, rows, fleet.page_headers(where, pages, found.total))

    def runs_page(self, request: Request) -> Page:
        query = request.arguments()
        now, days = self._sources.now(), timeline.days_from(query)
        where = RunFilter(
            job_id=query.get("job") or None,
            status=query.get("status") or None,
            since=now - timedelta(days=days),
            limit=RUNS_LIMIT,
        )
        runs = documents.runs_document(self._store, where)
        running = []
        for run in runs:
            if run["status"] == "running":
                tasks = self._store.tasks.run_tasks(run["run_id"])
                done, total = timeline.progress([render.task_json(t) for t in tasks])
                running.append({"run": run, "done": done, "total": total})
        context = {
            "page": "runs",
            "days": days,
            "lanes": timeline.lanes(runs, now, days),
            "ticks": timeline.day_ticks(now, days, self._times().zone),
            "running": running,
            "refresh_s": REFRESH_S if running else None,
            "recent": runs[:50],
        }
        return Page("runs.html", context, runs)

    def run_page(self, request: Request) -> Page:
        run_id = number(request.params["run_id"])
        if run_id is None:
            raise NotFoundError("no such run")
        document = documents.show_document(self._store, run_id)
        context = {"page": "runs", "run": document, "waits": self._waits(document)}
        return Page("run.html", context, document)

    def _waits(self, run: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The governor's events while the run ran (waits, 429s, pauses), oldest first."""
        if not run["started_at"]:
            return []
        start = datetime.fromisoformat(run["started_at"])
        end = datetime.fromisoformat(run["finished_at"]) if run["finished_at"] else None
        events = self._store.events.governor_events(start, GOVERNOR_LIMIT, until=end)
        return [render.governor_event_json(e) for e in reversed(events)]

    def schedule_page(self, request: Request) -> Page:
        config, now = self._sources.config(), self._sources.now()
        rows, _ = plan_rows(
            config, now, PLAN_COUNT, targets=None, store=self._store, note="--offline"
        )
        blackouts: list[tuple[str | None, Blackout]] = [(None, b) for b in config.blackouts]
        blackouts += [(j.id, b) for j in config.jobs for b in j.blackouts]
        blackouts_shown = [
            {"job_id": job_id, "name": b.name, "when": _blackout_text(b)} for job_id, b in blackouts
        ]
        shown = {
            # An interval has no zone of its own: its times show in the page's.
            job.id: {
                "zone": job.schedule.timezone if isinstance(job.schedule, CronSchedule) else None,
                "seconds": times.within_minutes(row["next"]),
            }
            for job, row in zip(config.jobs, rows, strict=True)
        }
        context = {"page": "schedule", "rows": rows, "shown": shown, "blackouts": blackouts_shown}
        return Page("schedule.html", context, rows)

    def budget_page(self, request: Request) -> Page:
        config, now = self._sources.config(), self._sources.now()
        hours = budget.hours_from(request.arguments())
        since = now - timedelta(hours=hours)
        minutes = documents.requests_document(self._store, since)
        events = documents.governor_document(self._store, since, GOVERNOR_LIMIT)
        limit = config.kinsta.rate_limits.per_minute
        shown = times.Times.of(now, config.timezone)
        usage = budget.usage(minutes, self._sources.companies(), now, hours, shown.zone)
        svgs = [
            charts.line(
                f"{u.company}: requests per minute ({shown.abbreviation})",
                u.labels,
                u.values,
                name=u.company,
                limit=limit,
                width=900,
            )
            for u in usage
        ]
        document = {"per_minute_limit": limit, "requests": minutes, "governor": events}
        context = {
            "page": "budget",
            "hours": hours,
            "limit": limit,
            "usage": list(zip(usage, svgs, strict=True)),
            "events": events,
        }
        return Page("budget.html", context, document)


def _blackout_text(blackout: Blackout) -> str:
    if isinstance(blackout, FixedBlackout):
        zone = ZoneInfo(blackout.timezone)
        start, end = blackout.start.astimezone(zone), blackout.end.astimezone(zone)
        return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} ({blackout.timezone})"
    minutes = blackout.duration_s / 60
    return f"from each '{blackout.cron}' for {minutes:g} min ({blackout.timezone})"
