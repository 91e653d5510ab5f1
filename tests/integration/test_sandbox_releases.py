"""Bad releases and offered versions in the sandbox (issue 15): a release that breaks the homepage
or one path, logs PHP fatal errors, slows or rewrites the pages, for chosen plugins and versions;
the effect follows the installed version through updates and restores. Real HTTP: Kinsta's API
through the real client (every request and answer checked against openapi.json), the admin
endpoints, and the fake sites' pages by Host header. The fake clock ends operations at once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.bootstrap import start_sandbox
from scheduler.config import parse
from scheduler.domain import RateLimits, Secret
from scheduler.errors import ConfigError
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.kinsta.models import Backup
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from scheduler.sandbox.releases import PAGE_MIN_S
from scheduler.sandbox.state import SandboxEnvironment
from scheduler.sandbox_values import SandboxOffer, SandboxRelease
from tests.conftest import FakeClock, checked_sandbox

DONE_S = 3600.0  # advancing the fake clock this far ends any operation


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[SandboxServer]:
    """Six sites whose generated plugins and themes offer no update: only the tests' offers."""
    yield from checked_sandbox(clock, seeded_updates=False)


@pytest.fixture
def client(sandbox: SandboxServer, clock: FakeClock) -> Iterator[KinstaClient]:
    governor = RateGovernor(RateLimits(), clock)
    with KinstaClient(sandbox.url, Secret(DEFAULT_API_KEY), governor, clock) as found:
        yield found


def admin(sandbox: SandboxServer, endpoint: str, body: Any) -> httpx.Response:
    base = sandbox.url.removesuffix("/v2")
    return httpx.post(f"{base}/_sandbox/{endpoint}", content=json.dumps(body), timeout=5)


Pages = Callable[..., httpx.Response]


@pytest.fixture
def page(sandbox: SandboxServer) -> Iterator[Pages]:
    """GET an environment's page (by its domain in the Host header), as a browser that keeps
    its connection, so that only the page's own time is measured."""
    with httpx.Client(base_url=sandbox.url.removesuffix("/v2"), timeout=10) as browser:

        def get(env: SandboxEnvironment, path: str = "/") -> httpx.Response:
            return browser.get(path, headers={"Host": env.domain})

        yield get


def state(sandbox: SandboxServer, env: SandboxEnvironment) -> dict[str, Any]:
    base = sandbox.url.removesuffix("/v2")
    everything: dict[str, Any] = httpx.get(f"{base}/_sandbox/state", timeout=5).json()
    return next(v for v in everything.values() if v["environment_id"] == env.id)


def site_live(sandbox: SandboxServer, index: int = 0) -> tuple[str, SandboxEnvironment]:
    site = sandbox.sandbox.fleet.sites[index]
    return site.name, site.environments[0]


def arrange(sandbox: SandboxServer, site: str, **plugins: tuple[str, str]) -> None:
    """Each plugin installed at its first version on `site`, its second offered."""
    for name, (installed, offered) in plugins.items():
        body = {"name": name, "version": offered, "installed": installed, "sites": [site]}
        answer = admin(sandbox, "offer", {**body, "environment": "live"})
        assert answer.status_code == 200, answer.text


def bad(sandbox: SandboxServer, name: str, version: str | None, effect: str) -> None:
    answer = admin(sandbox, "bad-release", {"name": name, "version": version, "effect": effect})
    assert answer.status_code == 200, answer.text


def update(client: KinstaClient, clock: FakeClock, env: SandboxEnvironment, *names: str) -> None:
    """Kinsta's bulk update of these plugins, to the versions on offer, until it ended."""
    client.plugins.bulk_update(env.id, list(names))
    clock.advance(DONE_S)


def take_backup(
    client: KinstaClient, clock: FakeClock, env: SandboxEnvironment, tag: str
) -> Backup:
    client.backups.create(env.id, tag)
    clock.advance(DONE_S)
    return next(b for b in client.backups.list(env.id) if b.note == tag)


def fatal_lines(client: KinstaClient, env: SandboxEnvironment) -> list[str]:
    return [
        line
        for line in client.logs.get(env.id, "error", 500).splitlines()
        if "PHP Fatal error" in line
    ]


# --- effects --------------------------------------------------------------------------------------


def test_a_fatal_release_answers_500_on_every_page_and_logs_a_fatal_error(
    sandbox: SandboxServer, client: KinstaClient, clock: FakeClock, page: Pages
) -> None:
    site, env = site_live(sandbox)
    arrange(sandbox, site, elementor=("3.2.0", "3.2.1"))
    bad(sandbox, "elementor", "3.2.1", "fatal")
    assert page(env).status_code == 200
    assert fatal_lines(client, env) == []

    update(client, clock, env, "elementor")
    for path in ("/", "/shop/"):
        answer = page(env, path)
        assert answer.status_code == 500 and "critical error" in answer.text
    (line,) = fatal_lines(client, env)
    assert "wp-content/plugins/elementor/elementor.php" in line
    assert state(sandbox, env)["broken"] == "fatal"
    assert state(sandbox, env)["effects"] == {"elementor": "fatal"}


def test_a_blank_release_answers_an_empty_page(
    sandbox: SandboxServer, client: KinstaClient, clock: FakeClock, page: Pages
) -> None:
    site, env = site_live(sandbox)
    arrange(sandbox, site, akismet=("5.0.0", "5.0.1"))
    bad(sandbox, "akismet", "5.0.1", "blank")
    update(client, clock, env, "akismet")
    answer = page(env)
    assert (answer.status_code, answer.text) == (200, "")
    assert fatal_lines(client, env) == []
    assert state(sandbox, env)["broken"] == "blank"


def test_a_release_that_breaks_one_path_leaves_the_homepage_alone(
    sandbox: SandboxServer, client: KinstaClient, clock: FakeClock, page: Pages
) -> None:
    site, env = site_live(sandbox)
    arrange(sandbox, site, woocommerce=("8.0.0", "8.1.0"))
    bad(sandbox, "woocommerce", "8.1.0", "path:/shop/")
    update(client, clock, env, "woocommerce")
    assert page(env, "/").status_code == 200
    assert page(env, "/cart/").status_code == 200
    for path in ("/shop/", "/shop", "/shop/?orderby=price"):
        assert page(env, path).status_code == 500, path
    assert state(sandbox, env)["broken"] is None  # the homepage answers
    assert state(sandbox, env)["effects"] == {"woocommerce": "path:/shop/"}


def test_php_fatals_leave_the_pages_fine_and_each_update_logs_a_new_line(
    sandbox: SandboxServer, client: KinstaClient, clock: FakeClock, page: Pages
) -> None:
    site, env = site_live(sandbox)
    arrange(sandbox, site, redirection=("1.0.0", "1.1.0"))
    bad(sandbox, "redirection", "1.1.0", "php-fatals")
    backup = take_backup(client, clock, env, "before")
    user = sandbox.sandbox.fleet.users[0]["id"]

    update(client, clock, env, "redirection")
    answer = page(env)
    assert answer.status_code == 200 and "Powered by WordPress" in answer.text
    first = fatal_lines(client, env)
    assert len(first) == 1
    client.backups.restore(env.id, backup.id, user)
    clock.advance(DONE_S)
    update(client, clock, env, "redirection")  # the same release again, within the same second
    second = fatal_lines(client, env)
    assert len(set(second)) == 2, second  # a new line, not a repeat a set of lines would hide


def test_a_slow_release_answers_each_page_that_many_times_slower_with_the_same_body(
    sandbox: SandboxServer, client: KinstaClient, clock: FakeClock, page: Pages
) -> None:
    site, env = site_live(sandbox)
    arrange(sandbox, site, wordfence=("7.0.0", "7.1.0"))
    bad(sandbox, "wordfence", "7.1.0", "slow:20")

    def timed() -> tuple[float, str]:
        started = time.perf_counter()
        answer = page(env, "/about/")
        assert answer.status_code == 200
        return time.perf_counter() - started, answer.text

    healthy_s, healthy_body = min(timed() for _ in range(3))
    update(client, clock, env, "wordfence")
    slow_s, slow_body = timed()
    assert slow_body == healthy_body
    assert slow_s >= 20 * PAGE_MIN_S  # time_scale 0.02: the floor of 10 ms, 20 times
    assert slow_s > 5 * healthy_s
    assert state(sandbox, env)["effects"] == {"wordfence": "slow:20"}


def test_a_changed_release_rewrites_the_page_but_still_answers_like_wordpress(
    sandbox: SandboxServer, client: KinstaClient, clock: FakeClock, page: Pages
) -> None:
    site, env = site_live(sandbox)
    arrange(sandbox, site, astra=("4.0.0", "4.1.0"))  # a theme, as the catalogue knows
    assert "astra" in env.themes
    bad(sandbox, "astra", "4.1.0", "changed")
    before = page(env).text
    client.themes.bulk_update(env.id, ["astra"])
    clock.advance(DONE_S)
    after = page(env)
    assert after.status_code == 200 and "Powered by WordPress" in after.text
    assert "<title>Coming soon</title>" in after.text and "<title>" in before
    assert after.text.count("<section") >= 5 and "<section" not in before
    assert len(after.text) > 2 * len(before)


# --- versions ------------------------------------------------------------------------------------


def test_only_the_bad_version_breaks_and_the_next_offer_heals(
    sandbox: SandboxServer, client: KinstaClient, clock: FakeClock, page: Pages
) -> None:
    (site, env), (other_site, other) = site_live(sandbox, 0), site_live(sandbox, 1)
    arrange(sandbox, site, elementor=("1.9.0", "2.0.0"))
    arrange(sandbox, other_site, elementor=("1.9.0", "2.0.1"))
    bad(sandbox, "elementor", "2.0.0", "fatal")
    update(client, clock, other, "elementor")
    assert page(other).status_code == 200  # 2.0.1 is good
    update(client, clock, env, "elementor")
    assert page(env).status_code == 500

    # 2.0.0 was bad; 2.0.1 is offered everywhere elementor is installed, and updating heals
    assert admin(sandbox, "offer", {"name": "elementor", "version": "2.0.1"}).status_code == 200
    listed = {p.name: p for p in client.plugins.list(env.id)}
    assert listed["elementor"].update_version == "2.0.1" and listed["elementor"].has_update
    update(client, clock, env, "elementor")
    assert page(env).status_code == 200
    assert state(sandbox, env)["plugins"]["elementor"] == "2.0.1"
    assert state(sandbox, env)["effects"] == {}


def test_a_rule_for_every_version_breaks_any_update_of_it_but_not_what_was_installed(
    sandbox: SandboxServer, client: KinstaClient, clock: FakeClock, page: Pages
) -> None:
    site, env = site_live(sandbox)
    arrange(sandbox, site, akismet=("5.0.0", "5.0.1"))
    bad(sandbox, "akismet", None, "blank")
    assert page(env).text != ""  # 5.0.0 was installed before the rule
    update(client, clock, env, "akismet")
    assert page(env).text == ""
    rules = httpx.get(sandbox.url.removesuffix("/v2") + "/_sandbox/bad-releases").json()
    assert rules == [{"name": "akismet", "version": None, "effect": "blank"}]


def test_break_on_update_still_makes_every_update_of_the_name_fatal(
    sandbox: SandboxServer, client: KinstaClient, clock: FakeClock, page: Pages
) -> None:
    site, env = site_live(sandbox)
    arrange(sandbox, site, redirection=("1.0.0", "1.0.1"))
    assert admin(sandbox, "break-on-update", {"name": "redirection"}).status_code == 200
    assert admin(sandbox, "break-on-update", {"name": "x", "mode": "slow"}).status_code == 400
    update(client, clock, env, "redirection")
    assert page(env).status_code == 500
    assert len(fatal_lines(client, env)) == 1


def test_a_single_plugin_update_to_a_bad_version_breaks_too(
    sandbox: SandboxServer, client: KinstaClient, clock: FakeClock, page: Pages
) -> None:
    site, env = site_live(sandbox)
    arrange(sandbox, site, elementor=("1.9.0", "2.0.0"))
    bad(sandbox, "elementor", "2.0.0", "fatal")
    client.plugins.update(env.id, "elementor", "2.0.0")
    clock.advance(DONE_S)
    assert page(env).status_code == 500


# --- the effect follows the installed version ------------------------------------------------------


def test_restoring_a_backup_taken_before_brings_the_healthy_page_back(
    sandbox: SandboxServer, client: KinstaClient, clock: FakeClock, page: Pages
) -> None:
    site, env = site_live(sandbox)
    arrange(sandbox, site, elementor=("1.9.0", "2.0.0"))
    bad(sandbox, "elementor", "2.0.0", "fatal")
    user = sandbox.sandbox.fleet.users[0]["id"]
    before = take_backup(client, clock, env, "before")
    update(client, clock, env, "elementor")
    after = take_backup(client, clock, env, "after")
    assert page(env).status_code == 500

    client.backups.restore(env.id, before.id, user)
    clock.advance(DONE_S)
    assert page(env).status_code == 200
    assert state(sandbox, env)["plugins"]["elementor"] == "1.9.0"
    assert state(sandbox, env)["effects"] == {} and state(sandbox, env)["broken"] is None

    client.backups.restore(env.id, after.id, user)  # the bad version comes back, and so does 500
    clock.advance(DONE_S)
    assert page(env).status_code == 500


# --- offers --------------------------------------------------------------------------------------


def test_one_site_with_one_bad_and_three_good_updates(
    sandbox: SandboxServer, client: KinstaClient, clock: FakeClock, page: Pages
) -> None:
    """The arrangement culprit isolation starts from: A's 2.0.0 is bad, B, C and D are good."""
    site, env = site_live(sandbox, 2)
    arrange(
        sandbox,
        site,
        plugin_a=("1.0.0", "2.0.0"),
        plugin_b=("1.0.0", "1.0.1"),
        plugin_c=("3.1.0", "3.2.0"),
        plugin_d=("0.9.0", "1.0.0"),
    )
    bad(sandbox, "plugin_a", "2.0.0", "fatal")
    pending = {p.name for p in client.plugins.list(env.id) if p.has_update}
    assert pending == {"plugin_a", "plugin_b", "plugin_c", "plugin_d"}  # seeded_updates: false
    assert {p.name: p.title for p in client.plugins.list(env.id)}["plugin_a"] == "Plugin_A"

    update(client, clock, env, "plugin_b", "plugin_c", "plugin_d")
    assert page(env).status_code == 200
    update(client, clock, env, "plugin_a")
    assert page(env).status_code == 500
    others = [s for s in sandbox.sandbox.fleet.sites if s.name != site]
    assert all("plugin_a" not in e.plugins for s in others for e in s.environments)


def test_offers_apply_to_the_sites_named_and_can_be_withdrawn(
    sandbox: SandboxServer, client: KinstaClient
) -> None:
    fleet = sandbox.sandbox.fleet
    assert all(
        i.latest == i.version
        for s in fleet.sites
        for e in s.environments
        for i in (*e.plugins.values(), *e.themes.values())
    )  # seeded_updates: false
    first = fleet.sites[0]
    name = next(iter(first.environments[0].plugins))
    answer = admin(sandbox, "offer", {"name": name, "version": "99.0.0", "sites": [first.name]})
    assert answer.json() == {"ok": True, "changed": len(first.environments)}
    offered = {
        s.name
        for s in fleet.sites
        for e in s.environments
        if name in e.plugins
        if e.plugins[name].latest == "99.0.0"
    }
    assert offered == {first.name}
    listed = {p.name: p for p in client.plugins.list(first.environments[0].id)}
    assert listed[name].update == "available" and listed[name].update_version == "99.0.0"

    assert admin(sandbox, "offer", {"name": "*", "version": None}).status_code == 200
    listed = {p.name: p for p in client.plugins.list(first.environments[0].id)}
    assert listed[name].update == "none" and listed[name].update_version is None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"name": "no-such-plugin", "version": "1.0.0"}, "has 'no-such-plugin' installed"),
        ({"name": "x", "version": "1.0", "installed": "0.9", "sites": ["nope"]}, "no site matches"),
        ({"name": "x", "version": 2.0}, "read as a number, not a version"),
        ({"name": "x"}, "version: give the version offered"),
        ({"name": "x*", "version": "1", "installed": "0.1"}, "named exactly"),
        ({"name": "x", "version": "1", "kind": "widget"}, "neither plugin nor theme"),
        ({"name": "x", "version": "1", "colour": "red"}, "unknown field(s): colour"),
    ],
)
def test_a_bad_offer_is_refused_saying_why(
    sandbox: SandboxServer, body: dict[str, Any], problem: str
) -> None:
    answer = admin(sandbox, "offer", body)
    assert answer.status_code == 400 and problem in answer.json()["message"], answer.text


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"name": "x", "effect": "explode"}, "unknown effect 'explode': use one of blank, fatal"),
        ({"name": "x", "effect": "slow:1"}, "the factor is a number above 1"),
        ({"name": "x", "effect": "path:shop"}, "unknown effect"),
        ({"name": "", "effect": "fatal"}, "name: name a plugin or theme"),
        ({"name": "x", "version": 3, "effect": "fatal"}, "read as a number"),
    ],
)
def test_a_bad_release_rule_is_refused_saying_why(
    sandbox: SandboxServer, body: dict[str, Any], problem: str
) -> None:
    answer = admin(sandbox, "bad-release", body)
    assert answer.status_code == 400 and problem in answer.json()["message"], answer.text


# --- from jobs.yaml (run --sandbox, trigger --sandbox) ----------------------------------------------

JOBS = """version: 1
sandbox:
  sites: 3
  seed: 4
  time_scale: 0.01
  seeded_updates: false
  bad_releases:
    - {name: plugin-a, version: "2.0.0", effect: fatal}
    - {name: elementor, effect: "slow:4"}
  offers:
    - {name: plugin-a, version: "2.0.0", installed: "1.0.0", sites: ["*-1"], environment: live}
    - {name: plugin-b, version: "1.1.0", installed: "1.0.0", sites: ["*-1"], environment: live}
jobs: []
"""


def test_jobs_yaml_arranges_the_sandbox_of_run_and_trigger(tmp_path: Path) -> None:
    config = parse(JOBS, str(tmp_path / "jobs.yaml"), {}, sandbox=True)
    assert config.sandbox.bad_releases == (
        SandboxRelease("plugin-a", "2.0.0", "fatal"),
        SandboxRelease("elementor", None, "slow:4"),
    )
    assert config.sandbox.offers[0] == SandboxOffer(
        "plugin-a", "2.0.0", ("*-1",), "live", "1.0.0", None
    )
    server = start_sandbox(config)
    try:
        views = server.sandbox.fleet.state()
    finally:
        server.stop()
    site = next(key for key in views if key.endswith("-1/live"))
    assert views[site]["updates"] == {"plugin-a": "2.0.0", "plugin-b": "1.1.0"}
    assert all(not v["updates"] for key, v in views.items() if key != site)
    assert server.sandbox.fleet.releases.to_json()[0]["name"] == "elementor"


def test_an_offer_that_matches_nothing_is_a_configuration_problem(tmp_path: Path) -> None:
    text = JOBS.replace('installed: "1.0.0", sites: ["*-1"]', 'sites: ["*-1"]', 1)
    config = parse(text, str(tmp_path / "jobs.yaml"), {}, sandbox=True)
    with pytest.raises(ConfigError) as caught:
        start_sandbox(config)
    assert str(caught.value) == (
        f"{tmp_path / 'jobs.yaml'}: sandbox.offers.0: no environment of the sites *-1 has "
        "'plugin-a' installed (give installed: VERSION to install it)"
    )
