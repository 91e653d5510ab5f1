"""History benchmark: a year of a busy agency's runs, and how fast the common questions are.

Fills a fresh database with --runs runs of --tasks-per-run tasks each (default 100,000 x 10 =
1,000,000 tasks, each with one operation) over --sites sites, through the project's own tables
(created by its migrations), then times the store calls behind the CLI:
  history --site X --since 30d      list_runs(site, since)
  history --status failed --since 7d  list_runs(status, since)
  history --tasks --site X --action A list_tasks(site, action)
  show RUN_ID                        get_run + run_tasks (tasks with operation timelines)
  sites                              sites.site_page: every site's latest outcomes and
                                     latest inventory (52 weekly snapshots per environment)
  sites --page 1                     the same for the first 100 sites (and the counts)
  sites --site X                     the same for one site
  report --since 30d (all sites)     a client report of every site over the last 30 days:
                                     gathered, as JSON and as HTML (measure_report)
and the dashboard's pages (scheduler.web), whole requests through the route table with the
HTML rendered, and their JSON twins: / (the first 100 of the fleet's sites; and all 1,000
with ?per_page=200, the largest page), /runs (7 days of 20 jobs), /runs/ID,
/schedule (20 jobs; plan's history reads) and /budget (6 hours of a 90-day table of requests
per minute for 2 keys). Target: each page within 300 ms.
Each query runs 5 times on a warm database; the median is reported. Process start-up is not
included.

    python benchmarks/history.py                       # SQLite in a temporary file
    python benchmarks/history.py --postgres postgresql+psycopg://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, insert, text

from scheduler.config import load
from scheduler.fleetquery import SiteQuery
from scheduler.history import (
    HistoryStore,
    RunFilter,
    TaskFilter,
    make_engine,
    sql_store,
)
from scheduler.history.migrate import upgrade
from scheduler.history.tables import (
    inventory,
    operations,
    request_minutes,
    runs,
    site_actions,
    tasks,
)
from scheduler.httpd import Request, Routes
from scheduler.web import Dashboard, Sources

ACTIONS = ("clear_cache", "restart_php", "update_plugins", "backup", "inventory")
BATCH = 20_000
YEAR_S = 365 * 86400
NOW = datetime.now(UTC).replace(microsecond=0)


def fill(engine: Engine, run_count: int, per_run: int, site_count: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    sites = [f"site-{n:04d}" for n in range(site_count)]
    jobs = [f"job-{n:02d}" for n in range(20)]
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    run_rows: list[dict[str, Any]] = []
    task_rows: list[dict[str, Any]] = []
    op_rows: list[dict[str, Any]] = []
    task_id = 0
    for run_id in range(1, run_count + 1):
        # Distinct slots scattered over a year (313 shares no factor with a year's seconds), so
        # no two runs claim the same (job, slot) and the unique index never rejects a row.
        slot = NOW - timedelta(seconds=(run_id * 313) % YEAR_S)
        failed = rng.random() < 0.03
        run_rows.append({
            "id": run_id, "job_id": rng.choice(jobs), "trigger": "schedule", "scheduled_for": slot,
            "started_at": slot, "finished_at": slot + timedelta(minutes=3), "heartbeat_at": slot,
            "status": "failed" if failed else "succeeded", "tasks_total": per_run, "tasks_failed": int(failed),
            "started_by": "bench:1", "targets": [],
        })  # fmt: skip
        for position in range(per_run):
            task_id += 1
            site, env, action = (
                rng.choice(sites),
                rng.choice(("live", "staging")),
                rng.choice(ACTIONS),
            )
            status = "failed" if failed and position == 0 else "succeeded"
            done = slot + timedelta(seconds=10 + position)
            task_rows.append({
                "id": task_id, "run_id": run_id, "position": position, "site": site, "environment": env,
                "action": action, "status": status, "attempts": 1, "operation_id": f"op-{uuid.UUID(int=task_id)}",
                "operation_status": status, "message": "ok", "started_at": slot, "finished_at": done,
                **update_columns(action, task_id),
            })  # fmt: skip
            events = [
                {
                    "at": slot.isoformat(),
                    "state": "pending",
                    "http_status": 202,
                    "message": "accepted",
                },
                {"at": done.isoformat(), "state": status, "http_status": 200, "message": "done"},
            ]
            op_rows.append({
                "task_id": task_id, "operation_id": f"op-{uuid.UUID(int=task_id)}", "action": action,
                "state": status, "started_at": slot, "finished_at": done, "polls": 1, "message": "done", "events": events,
            })  # fmt: skip
            key = (site, env, action)
            if key not in latest or latest[key]["last_finished_at"] < done:
                latest[key] = {"site": site, "environment": env, "action": action, "last_run_id": run_id,
                               "last_status": status, "last_finished_at": done, "last_message": "ok",
                               "last_success_at": done if status == "succeeded" else None,
                               "last_failure_at": done if status == "failed" else None}  # fmt: skip
        if len(task_rows) >= BATCH:
            _flush(engine, run_rows, task_rows, op_rows)
    _flush(engine, run_rows, task_rows, op_rows)
    with engine.begin() as connection:
        connection.execute(insert(site_actions), list(latest.values()))
    fill_inventory(engine, sites, rng)
    fill_request_minutes(engine)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))


REQUEST_DAYS = 90
SCOPES = ("fp-agency-a", "fp-agency-b")


def fill_request_minutes(engine: Engine) -> None:
    """Requests per minute for two keys over 90 days (history prune keeps about that)."""
    start = NOW.replace(second=0) - timedelta(days=REQUEST_DAYS)
    rows: list[dict[str, Any]] = []
    for minute in range(REQUEST_DAYS * 1440):
        for n, scope in enumerate(SCOPES):
            at = start + timedelta(minutes=minute)
            rows.append({"scope": scope, "minute": at, "requests": (minute * 7 + n) % 120})
        if len(rows) >= BATCH:
            with engine.begin() as connection:
                connection.execute(insert(request_minutes), rows)
            rows.clear()
    if rows:
        with engine.begin() as connection:
            connection.execute(insert(request_minutes), rows)


INVENTORY_WEEKS = 52


def fill_inventory(engine: Engine, sites: list[str], rng: random.Random) -> None:
    """A weekly inventory of every site's live environment for a year."""
    plugins = ["akismet", "woocommerce", "wordpress-seo", "elementor", "wordfence", "redirection"]
    rows: list[dict[str, Any]] = []
    for site in sites:
        for week in range(INVENTORY_WEEKS):
            rows.append({
                "taken_at": NOW - timedelta(weeks=week), "site": site, "environment": "live",
                "php_version": rng.choice(("8.1", "8.2", "8.3")), "wordpress_version": "6.6.2",
                "plugins": [{"name": p, "version": f"{rng.randint(1, 9)}.{week}.0",
                             "update_version": None} for p in plugins],
                "themes": [{"name": "astra", "version": "4.6.0", "update_version": "4.7.0"}],
                "backups": [{"id": week, "type": "automatic", "note": None, "created_at": ""}],
            })  # fmt: skip
            if len(rows) >= BATCH // 10:
                with engine.begin() as connection:
                    connection.execute(insert(inventory), rows)
                rows.clear()
    if rows:
        with engine.begin() as connection:
            connection.execute(insert(inventory), rows)


def _flush(engine: Engine, *batches: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        for table, rows in zip((runs, tasks, operations), batches, strict=True):
            if rows:
                connection.execute(insert(table), rows)
    for rows in batches:
        rows.clear()


def timed(call: Callable[[], object], repeat: int = 5) -> tuple[float, object]:
    durations, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations) * 1000, result


def measure(store: HistoryStore) -> dict[str, float]:
    site, run_id = "site-0042", 50_000
    queries: dict[str, Callable[[], object]] = {
        "history --site X --since 30d": lambda: store.queries.list_runs(RunFilter(site=site, since=NOW - timedelta(days=30))),
        "history --status failed --since 7d": lambda: store.queries.list_runs(RunFilter(status="failed", since=NOW - timedelta(days=7))),
        "history --tasks --site X --action A": lambda: store.queries.list_tasks(TaskFilter(site=site, action="backup")),
        "show RUN_ID": lambda: (store.queries.get_run(run_id), store.tasks.run_tasks(run_id)),
        "sites": lambda: store.sites.site_page(SiteQuery()),
        "sites --page 1": lambda: store.sites.site_page(SiteQuery(limit=100)),
        "sites --site X": lambda: (store.queries.site_actions(site), store.catalogue.latest_inventory(site)),
    }  # fmt: skip
    return {name: round(timed(call)[0], 1) for name, call in queries.items()}


def update_columns(action: str, task_id: int) -> dict[str, Any]:
    """What a safe plugin update records: one plugin moved, the site verified (two checks)."""
    if action != "update_plugins":  # every row has the same keys (one executemany)
        return {"versions_before": None, "versions_after": None, "result": None}
    name, minor = ("akismet", "elementor", "wordfence")[task_id % 3], task_id % 50
    checks = [{"name": "status", "ok": True}, {"name": "content", "ok": task_id % 7 != 0}]
    return {
        "versions_before": {"plugins": {name: f"5.{minor}.0"}},
        "versions_after": {"plugins": {name: f"5.{minor}.1"}},
        "result": {
            "backup": {"id": task_id},
            "verify": {"ok": task_id % 7 != 0, "checks": checks, "problems": []},
        },
    }


def measure_report(store: HistoryStore) -> dict[str, float]:
    """A client report of every site over the last 30 days (the issue's target: 5 s for 1,000
    sites): gathered from history, then as the JSON document and as the HTML page."""
    from zoneinfo import ZoneInfo

    from scheduler.branding import ReportBranding
    from scheduler.reporting import since_period
    from scheduler.reports import Selection, gather, render_html, to_document

    period = since_period("30d", NOW, ZoneInfo("UTC"))

    def report(fmt: str) -> object:
        built = gather(store, period, Selection(), ReportBranding(), NOW)
        return to_document(built) if fmt == "json" else render_html(built)

    return {
        "report --since 30d (gather + json)": round(timed(lambda: report("json"), repeat=3)[0], 1),
        "report --since 30d (gather + html)": round(timed(lambda: report("html"), repeat=3)[0], 1),
    }


JOBS_YAML = """version: 1
database: {url}
jobs:
""" + "".join(
    f"""  - id: job-{n:02d}
    schedule: {{cron: "{n} 2 * * *", timezone: Europe/Amsterdam}}
    targets: {{environment: all}}
    actions: [backup, update_plugins, clear_cache]
"""
    for n in range(20)
)


def measure_dashboard(store: HistoryStore, url: str, folder: Path, run_id: int) -> dict[str, float]:
    """Each page as the daemon serves it: the route table, the handler, the HTML or JSON."""
    path = folder / "jobs.yaml"
    path.write_text(JOBS_YAML.replace("{url}", url))
    config = load(path, {})
    sources = Sources(
        config=lambda: config, now=lambda: NOW, companies=lambda: {s: s for s in SCOPES}
    )
    routes = Dashboard(store, sources).add_routes(Routes())
    pages = ["/", "/?per_page=200", "/runs", f"/runs/{run_id}", "/schedule", "/budget"]
    figures = {}
    for page in pages:
        route, _, asked = page.partition("?")
        for query in (asked, "&".join(filter(None, (asked, "format=json")))):
            request = Request("GET", route, query, {})
            elapsed, answer = timed(partial(routes.dispatch, request))
            assert getattr(answer, "status", None) == 200, (page, query)
            name = "/runs/ID" if page.startswith("/runs/") else page
            figures[f"dashboard {name}" + (" (json)" if "json" in query else "")] = round(
                elapsed, 1
            )
    return figures


def run_on(url: str, args: argparse.Namespace) -> dict[str, Any]:
    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    fill(engine, args.runs, args.tasks_per_run, args.sites)
    filled_s = time.perf_counter() - started
    store = sql_store(engine)
    figures = measure(store)
    figures.update(measure_report(store))
    with tempfile.TemporaryDirectory() as folder:
        figures.update(measure_dashboard(store, url, Path(folder), args.runs - 10))
    engine.dispose()
    return {"fill_s": round(filled_s, 1), "queries_ms": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--tasks-per-run", type=int, default=10)
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        help="also run on PostgreSQL (a scratch database is created)",
    )
    args = parser.parse_args()
    results: dict[str, Any] = {
        "runs": args.runs,
        "tasks": args.runs * args.tasks_per_run,
        "sites": args.sites,
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = run_on(f"sqlite:///{Path(tmp) / 'history.db'}", args)
    if args.postgres:
        name = f"ks_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            results["postgresql"] = run_on(f"{args.postgres.rsplit('/', 1)[0]}/{name}", args)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print(
        f"{results['tasks']:,} tasks in {results['runs']:,} runs over {results['sites']:,} sites; median of 5, ms"
    )
    backends = [b for b in ("sqlite", "postgresql") if b in results]
    print(f"{'query':40}" + "".join(f"{b:>12}" for b in backends))
    for query in results["sqlite"]["queries_ms"]:
        print(
            f"{query:40}" + "".join(f"{results[b]['queries_ms'][query]:>12.1f}" for b in backends)
        )
    print(f"{'(fill, seconds)':40}" + "".join(f"{results[b]['fill_s']:>12.1f}" for b in backends))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
