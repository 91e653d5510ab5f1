"""The dashboard through real HTTP on loopback, over a seeded SQLite history: every page
renders, each JSON twin is what the CLI's `--format json` gives for the same question, the
filters filter, and the token guards the pages (and only them)."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner
from structlog.testing import capture_logs

from scheduler.cli import cli
from scheduler.config import load
from scheduler.history import make_engine, sql_store
from scheduler.history.migrate import upgrade
from scheduler.httpd import HttpServer, Request, Response, Routes
from scheduler.web import Dashboard, SiteFact, Sources
from tests.dashboard_seed import JOBS_YAML, seed

NOW = datetime(2026, 11, 27, 10, 17, 5, tzinfo=UTC)  # a Friday, before the DST change is near
FACTS = {
    "alpha": SiteFact("acme", ("vip", "shop")),
    "beta": SiteFact("acme", ("shop",)),
    "gamma": SiteFact("globex", ()),
}


@dataclass
class Served:
    base: str
    url: str  # the history's database URL
    config: Path
    runs: dict[str, int]

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
        request = urllib.request.Request(self.base + path, headers=headers or {})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
                return answer.status, answer.read().decode(), answer.headers
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), error.headers

    def json(self, path: str) -> Any:
        status, body, headers = self.get(path)
        assert status == 200 and headers["Content-Type"] == "application/json", body
        return json.loads(body)

    def cli(self, *args: str) -> Any:
        """The CLI in this process, leaving logging as it was (CliRunner closes its stderr)."""
        root = logging.getLogger()
        handlers, level, config = root.handlers[:], root.level, structlog.get_config()
        try:
            result = CliRunner().invoke(
                cli, ["--config", str(self.config), "--database", self.url, *args], env={}
            )
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)
            structlog.configure(**config)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@contextlib.contextmanager
def _serve(tmp_path: Path, token: str | None = None, hosts: str | None = None) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    engine = make_engine(url)
    upgrade(engine)
    store = sql_store(engine)
    runs = seed(store, NOW)
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS_YAML.format(url=url))
    config = load(path, {})
    sources = Sources(
        config=lambda: config,
        now=lambda: NOW,
        facts=lambda: FACTS,
        companies=lambda: {"fp-default": "default"},
    )
    routes = Routes().add("GET", "/healthz", lambda _r: Response.text(200, "ok"))
    Dashboard(store, sources, token, hosts).add_routes(routes, "127.0.0.1")
    server = HttpServer(routes, "127.0.0.1", 0).start()
    try:
        yield Served(f"http://127.0.0.1:{server.port}", url, path, runs)
    finally:
        server.stop()
        store.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with _serve(tmp_path) as found:
        yield found


def iso(moment: datetime) -> str:
    return moment.isoformat()


def test_every_page_renders_with_its_navigation(served: Served) -> None:
    for path in ("/", "/runs", f"/runs/{served.runs['bad']}", "/schedule", "/budget"):
        status, body, headers = served.get(path)
        assert status == 200, (path, body)
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert 'href="/runs"' in body and 'rel="icon" href="data:,"' in body


ISO_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def _visible(body: str) -> str:
    """A page's text as a reader sees it: no style, no tags (so no attributes)."""
    return " ".join(re.sub(r"<[^>]+>", " ", body.split("</style>", 1)[1]).split())


def test_every_page_shows_times_for_people_in_the_configured_zone(served: Served) -> None:
    for path in ("/", "/runs", f"/runs/{served.runs['bad']}", "/schedule", "/budget"):
        _, body, _ = served.get(path)
        assert "&#34;" not in body.split("</style>", 1)[0], "the style sheet was escaped"
        assert 'id="zone" data-zone="Europe/Amsterdam"' in body
        text = _visible(body)
        assert "Fri 27 Nov 11:17 CET" in text and "Times in CET (Europe/Amsterdam)" in text
        assert not ISO_INSTANT.search(text), (path, ISO_INSTANT.findall(text))


def test_the_fleet_is_a_matrix_of_environments_and_actions(served: Served) -> None:
    _, body, _ = served.get("/")
    heads = re.findall(r'<th class="action-head" data-action="(\w+)"', body)
    assert heads == ["backup", "clear_cache", "inventory"]
    assert '<tr class="site-env" data-site="alpha" data-environment="staging">' in body
    cell = re.search(
        r'<td class="cell action" data-environment="live" data-action="clear_cache" '
        r'data-status="failed"><a class="chip s-failed" href="/runs/(\d+)" title="([^"]+)">'
        r'failed</a><span class="ago">23 h ago</span></td>',
        body,
    )
    assert cell is not None and int(cell[1]) == served.runs["bad"]
    assert "Thu 26 Nov 11:17 CET" in cell[2]
    # gamma's last backup three hours ago, in the zone, with the instant in the tag
    backup = (NOW - timedelta(hours=3)).isoformat()
    assert f'<time datetime="{backup}" title="{backup}">Fri 27 Nov 08:17</time>' in body


def test_the_run_page_says_how_long_the_run_took(served: Served) -> None:
    _, body, _ = served.get(f"/runs/{served.runs['bad']}")
    text = _visible(body)
    assert "Started Thu 26 Nov 11:17 Finished Thu 26 Nov 11:18 23 h ago" in text
    assert "took 1 min" in text and "11:17:25 rate limited" in text


def test_the_schedule_shows_fire_times_in_each_jobs_zone(served: Served) -> None:
    _, body, _ = served.get("/schedule")
    text = _visible(body)
    assert "cron 30 2 * * * Europe/Amsterdam Sat 28 Nov 02:30 CET Sun 29 Nov 02:30 CET" in text
    assert "every 3600s Fri 27 Nov 12:00 CET" in text  # an interval: in the page's zone


def test_the_fleet_twin_is_sites_json(served: Served) -> None:
    expected = served.cli("sites", "--page", "1", "--format", "json")
    assert served.json("/?format=json") == expected == served.cli("sites", "--format", "json")


def test_the_fleet_pages_and_its_twin_says_where_the_next_page_is(served: Served) -> None:
    status, body, headers = served.get("/?status=ok&per_page=1&page=2&format=json")
    expected = served.cli(
        "sites", "--status", "ok", "--per-page", "1", "--page", "2", "--format", "json"
    )
    assert status == 200 and json.loads(body) == expected
    assert [row["site"] for row in expected] == ["gamma"] and headers["X-Total-Count"] == "2"
    assert headers["Link"] == '</?status=ok&page=1&per_page=1&format=json>; rel="prev"'
    _, page, _ = served.get("/?per_page=2")
    assert 'data-count="3" data-shown="2"' in page and 'data-pages="2"' in page
    assert 'href="/?page=2&amp;per_page=2"' in page


def test_the_runs_twin_is_history_json(served: Served) -> None:
    since = iso(NOW - timedelta(days=7))
    expected = served.cli("history", "--since", since, "--limit", "2000", "--format", "json")
    assert served.json("/runs?format=json") == expected
    assert {r["status"] for r in expected} == {"succeeded", "failed", "running"}


def test_the_run_twin_is_show_json(served: Served) -> None:
    run_id = served.runs["bad"]
    assert served.json(f"/runs/{run_id}?format=json") == served.cli(
        "show", str(run_id), "--format", "json"
    )


def test_the_schedule_twin_is_plan_offline_json(served: Served) -> None:
    expected = served.cli("plan", "--offline", "--at", iso(NOW), "--format", "json")
    assert served.json("/schedule?format=json") == expected
    assert expected[1]["paused"]["reason"] == "migration"


def test_the_budget_twin_is_history_requests_and_governor(served: Served) -> None:
    since = iso(NOW - timedelta(hours=6))
    document = served.json("/budget?format=json")
    assert document["per_minute_limit"] == 120
    assert document["requests"] == served.cli(
        "history", "requests", "--since", since, "--format", "json"
    )
    assert document["governor"] == served.cli(
        "history", "governor", "--since", since, "--limit", "500", "--format", "json"
    )
    assert len(document["requests"]) == 29 and len(document["governor"]) == 1


def test_the_fleet_page_shows_status_updates_backups_and_failures(served: Served) -> None:
    _, body, _ = served.get("/")
    assert 'id="fleet-summary" data-count="3"' in body
    assert 'data-site="beta" data-status="failed"' in body
    assert 'data-site="gamma" data-status="ok" data-pending="2" data-held="1"' in body
    assert f'href="/runs/{served.runs["running"]}"' in body  # alpha's latest run
    assert "site answered 500 after update" in body


@pytest.mark.parametrize(
    ("query", "sites"),
    [
        ("status=failed", ["beta"]),
        ("status=ok", ["alpha", "gamma"]),
        ("label=VIP", ["alpha"]),
        ("company=globex", ["gamma"]),
        ("q=stag", ["alpha"]),
        ("q=shop&company=acme", ["alpha", "beta"]),
        ("q=nothing", []),
    ],
)
def test_the_fleet_filters(served: Served, query: str, sites: list[str]) -> None:
    assert [row["site"] for row in served.json(f"/?{query}&format=json")] == sites


def test_the_runs_page_shows_progress_and_refreshes_while_running(served: Served) -> None:
    _, body, _ = served.get("/runs")
    running = served.runs["running"]
    assert f'data-run="{running}" data-done="1" data-total="2"' in body
    assert '<meta http-equiv="refresh" content="5">' in body
    assert 'class="lane" data-job="nightly"' in body


def test_the_run_page_links_each_operation_and_the_governor_waits(served: Served) -> None:
    _, body, _ = served.get(f"/runs/{served.runs['bad']}")
    assert body.count('class="operation"') == 3
    assert 'href="#op-' in body and 'data-kind="rate_limited"' in body


@pytest.mark.parametrize(
    "path",
    ["/runs/999", "/runs/abc", "/runs/1/x", "/runs/99999999999999999999", "/runs/%C2%B2",
     "/runs/%B2", "/runs/-1", "/runs/" + "9" * 5000],
)  # fmt: skip
def test_an_unknown_run_is_404(served: Served, path: str) -> None:
    with capture_logs() as logs:
        assert served.get(path)[0] == 404
    assert not [e for e in logs if e["event"] == "http.route_failed"]


@pytest.mark.parametrize(
    "query", ["page=%C2%B2", "page=" + "9" * 5000, "per_page=-5", "days=%C2%B2", "hours=1e9"]
)
def test_odd_numbers_in_a_query_fall_back_to_the_defaults(served: Served, query: str) -> None:
    with capture_logs() as logs:
        for path in ("/", "/runs", "/budget"):
            assert served.get(f"{path}?{query}")[0] == 200, path
    assert not [e for e in logs if e["event"] == "http.route_failed"]


def test_a_page_holds_at_most_200_sites_and_says_so(served: Served) -> None:
    """A per_page above the cap is the cap, for the page count and the links as for the rows."""
    _, _, headers = served.get("/?per_page=100000&format=json")
    assert headers["X-Total-Count"] == str(len(served.json("/?format=json")))
    _, page, _ = served.get("/?per_page=100000")
    assert "per_page=100000" not in page


def test_without_a_token_only_this_machines_own_names_are_answered(served: Served) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 still sends its own name."""
    port = served.base.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "10.0.0.7"):
        assert served.get("/", {"Host": host})[0] == 200, host
    for host in (f"evil.example:{port}", "evil.example", "[::1", ""):
        status, body, _ = served.get("/runs", {"Host": host})
        assert status == 421 and "KINSTA_SCHEDULER_HTTP_HOSTS" in body, host
    assert served.get("/healthz", {"Host": "evil.example"})[0] == 200  # only the pages


def test_names_listed_in_http_hosts_are_answered(tmp_path: Path) -> None:
    with _serve(tmp_path, hosts="scheduler.agency.example, Ops.Example") as served:
        for host in ("scheduler.agency.example", "ops.example:8787", "127.0.0.1"):
            assert served.get("/", {"Host": host})[0] == 200, host
        assert served.get("/", {"Host": "other.example"})[0] == 421


def test_the_schedule_page_marks_pauses_and_blackouts(served: Served) -> None:
    _, body, _ = served.get("/schedule")
    assert 'data-job="hourly" data-paused="yes"' in body
    assert "freeze" in body and "Europe/Amsterdam" in body


def test_the_budget_page_charts_each_company_against_the_limit(served: Served) -> None:
    _, body, _ = served.get("/budget")
    assert 'data-company="default" data-total="' in body
    assert 'class="limit"' in body and 'data-kind="long_wait"' in body


def test_a_token_guards_the_pages_and_only_them(tmp_path: Path) -> None:
    with _serve(tmp_path, token="s3cret") as served:
        _check_the_gate(served)


def _check_the_gate(served: Served) -> None:
    assert served.get("/")[0] == 401
    assert served.get("/healthz")[0] == 200
    assert served.get("/?token=wrong")[0] == 401
    assert served.get("/runs", {"Authorization": "Bearer s3cret"})[0] == 200
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        opener.open(served.base + "/runs?days=3&token=s3cret", timeout=10)
        raise AssertionError("no redirect")
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 303 and redirect.headers["Location"] == "/runs?days=3"
        cookie = redirect.headers["Set-Cookie"]
    # Lax: a link from Slack or a mail opens the page with the cookie; the pages only read.
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "s3cret" not in cookie
    assert "Max-Age=43200" in cookie
    assert served.get("/", {"Cookie": cookie.split(";")[0]})[0] == 200
    assert served.get("/", {"Cookie": "kinsta_scheduler_dashboard=forged"})[0] == 401
    assert served.get("/", {"Cookie": "kinsta_scheduler_dashboard=\u00e9t\u00e9"})[0] == 401
    # A token is for any name (DNS rebinding cannot get it); `//host/x` does not leave the host.
    assert served.get("/runs", {"Authorization": "Bearer s3cret", "Host": "x.example"})[0] == 200
    try:
        opener.open(served.base + "////runs?token=s3cret", timeout=10)
        raise AssertionError("no redirect")
    except urllib.error.HTTPError as redirect:
        assert redirect.headers["Location"] == "/runs"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_a_public_address_without_a_token_is_warned_about(tmp_path: Path) -> None:
    sources = Sources(config=lambda: load(tmp_path / "none.yaml", {}), now=lambda: NOW)
    store = sql_store(make_engine(f"sqlite:///{tmp_path / 'h.db'}"))
    with capture_logs() as logs:
        Dashboard(store, sources).add_routes(Routes(), "0.0.0.0")
        Dashboard(store, sources, "t").add_routes(Routes(), "0.0.0.0")
        Dashboard(store, sources).add_routes(Routes(), "::1")
    assert [e["event"] for e in logs] == ["dashboard.exposed_without_token"]
    assert (
        Dashboard(store, sources)
        .add_routes(Routes())
        .dispatch(Request("GET", "/nothing", "", {}))
        .status
        == 404
    )
    store.close()
