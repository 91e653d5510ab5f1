"""The sandbox refuses what Kinsta refuses, with Kinsta's status and message shape, and answers
404 for an unknown environment on the tool endpoints (issue 12, items 2 and 4). Real HTTP; the
`sandbox` fixture fails a test whose requests or answers do not match the spec (with its
explicit allowance of the statuses Kinsta answers beyond it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from scheduler.clock import SystemClock
from scheduler.domain import OperationState, Polling, RateLimits, Secret
from scheduler.errors import KinstaAPIError, NotFoundAPIError
from scheduler.kinsta import KinstaClient, OperationAccepted, RateGovernor
from scheduler.kinsta.operations import wait_for_operation
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from scheduler.sandbox.rules import SUPPORTED_PHP_VERSIONS
from scheduler.sandbox.spec import Match, load_spec
from scheduler.sandbox.state import Fleet
from tests.conftest import checked_sandbox

FAST = Polling(first_poll_s=0.01, max_interval_s=0.05, not_found_grace_s=5, deadline_s=20)
UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    yield from checked_sandbox(time_scale=0.002)


@pytest.fixture
def fleet(sandbox: SandboxServer) -> Fleet:
    return sandbox.sandbox.fleet


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[KinstaClient]:
    clock = SystemClock()
    governor = RateGovernor(RateLimits(), clock)
    with KinstaClient(sandbox.url, Secret(DEFAULT_API_KEY), governor, clock) as client:
        yield client


@pytest.fixture
def http(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    with httpx.Client(base_url=sandbox.url, headers=headers, timeout=5) as raw:
        yield raw


def done(client: KinstaClient, accepted: OperationAccepted) -> None:
    result = wait_for_operation(client, accepted.operation_id, FAST, SystemClock())
    assert result.state is OperationState.SUCCEEDED, result


def refused(call: Callable[[], object]) -> KinstaAPIError:
    with pytest.raises(KinstaAPIError) as caught:
        call()
    assert caught.value.status == 400
    return caught.value


# --- item 2: what Kinsta refuses ----------------------------------------------------------------


def test_the_regions_list_is_served_and_a_site_needs_a_region_from_it(
    http: httpx.Client, client: KinstaClient, fleet: Fleet
) -> None:
    answer = http.get(f"/company/{fleet.company_id}/available-regions")
    regions = answer.json()["company"]["available_regions"]
    assert {"name": "Dallas US (us-south1)", "region": "us-south1"} in regions
    assert http.get(f"/company/{UNKNOWN}/available-regions").status_code == 404

    error = refused(lambda: client.sites.create_plain(fleet.company_id, "Mars", "mars-north1"))
    assert "mars-north1" in error.kinsta_message
    body = {"company": fleet.company_id, "display_name": "Mars", "region": "mars-north1"}
    raw = http.post("/sites/plain", json=body)
    assert raw.json() == {"message": error.kinsta_message, "status": 400}
    for region in (r["region"] for r in regions[:2]):
        done(client, client.sites.create_plain(fleet.company_id, f"In {region}", region))
    assert len(fleet.sites) == 8


def test_php_versions_kinsta_does_not_offer_are_refused(client: KinstaClient, fleet: Fleet) -> None:
    env = fleet.sites[0].environments[0]
    before = env.php_version
    for version in ("5.2", "7.4", "9.9"):
        error = refused(lambda v=version: client.tools.set_php_version(env.id, v))  # type: ignore[misc]
        assert f"PHP version {version} is not supported" in error.kinsta_message
        assert "8.4" in error.kinsta_message
    assert env.php_version == before and "php:modify-version:accepted" not in env.counters
    assert SUPPORTED_PHP_VERSIONS == ("8.0", "8.1", "8.2", "8.3", "8.4")
    done(client, client.tools.set_php_version(env.id, "8.4"))
    assert env.php_version == "8.4"


@pytest.mark.parametrize(
    "name", ["not a domain!!", "shop", "-shop.example.org", "shop..example.org", "shop.example.1"]
)
def test_a_name_that_is_not_a_domain_is_refused(
    client: KinstaClient, fleet: Fleet, name: str
) -> None:
    env = fleet.sites[0].environments[0]
    error = refused(lambda: client.domains.add(env.id, name))
    assert error.kinsta_message == f"Invalid domain name: {name}"
    assert "sites:add-domain:accepted" not in env.counters


def test_real_domain_names_are_accepted(client: KinstaClient, fleet: Fleet) -> None:
    env = fleet.sites[0].environments[0]
    for name in ("shop.example.org", "*.example.co.uk", "xn--bcher-kva.example"):
        done(client, client.domains.add(env.id, name))
    assert {d.name for d in env.extra_domains} >= {"shop.example.org", "*.example.co.uk"}


def test_a_sixth_manual_backup_is_refused_until_one_is_deleted(
    client: KinstaClient, fleet: Fleet
) -> None:
    env = fleet.sites[0].environments[0]
    accepted = [client.backups.create(env.id, f"b{n}") for n in range(5)]  # taken at once
    error = refused(lambda: client.backups.create(env.id, "sixth"))  # counts those in flight
    assert "5 manual backups" in error.kinsta_message
    for one in accepted:
        done(client, one)
    refused(lambda: client.backups.create(env.id, "sixth"))
    manual = [b for b in client.backups.list(env.id) if b.type == "manual"]
    assert len(manual) == 5
    done(client, client.backups.delete(manual[0].id))
    done(client, client.backups.create(env.id, "sixth"))


def test_a_second_standard_staging_environment_is_refused(
    client: KinstaClient, fleet: Fleet
) -> None:
    with_staging = next(s for s in fleet.sites if len(s.environments) == 2)
    live = with_staging.environments[0]
    error = refused(lambda: client.environments.clone(with_staging.id, "QA", live.id))
    assert "standard staging environment" in error.kinsta_message
    refused(lambda: client.environments.create_plain(with_staging.id, "QA"))
    done(client, client.environments.clone(with_staging.id, "QA", live.id, is_premium=True))

    bare = next(s for s in fleet.sites if len(s.environments) == 1)
    first = client.environments.clone(bare.id, "Staging", bare.environments[0].id)
    refused(lambda: client.environments.create_plain(bare.id, "Second"))  # the first is in flight
    done(client, first)
    assert [e.is_premium for e in bare.environments] == [False, False]


# --- item 4: an unknown environment on the tool endpoints is a 404 ------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.tools.clear_cache(UNKNOWN),
        lambda c: c.tools.restart_php(UNKNOWN),
        lambda c: c.tools.set_php_version(UNKNOWN, "8.3"),
        lambda c: c.tools.clear_edge_cache(UNKNOWN),
        lambda c: c.tools.clear_cdn_cache(UNKNOWN, UNKNOWN),
        lambda c: c.tools.get_denied_ips(UNKNOWN),
        lambda c: c.tools.set_denied_ips(UNKNOWN, ["203.0.113.7"]),
    ],
    ids=["clear-cache", "restart-php", "php-version", "edge", "cdn", "get-ips", "set-ips"],
)
def test_an_unknown_environment_on_a_tool_endpoint_is_not_found_and_not_retried(
    client: KinstaClient, sandbox: SandboxServer, call: Callable[[KinstaClient], object]
) -> None:
    with pytest.raises(NotFoundAPIError) as caught:
        call(client)
    assert caught.value.status == 404
    assert caught.value.kinsta_message == (
        "Could not find data or the user does not have permissions to retrieve it"
    )
    assert sandbox.sandbox.snapshot()["requests"] == 1  # answered once: nothing to retry


def test_a_cache_the_environment_lacks_is_not_found(
    client: KinstaClient, fleet: Fleet, sandbox: SandboxServer
) -> None:
    with_caches = next(e for s in fleet.sites for e in s.environments if e.cdn_cache_id)
    bare = next(e for s in fleet.sites for e in s.environments if e.edge_cache_id is None)
    with pytest.raises(NotFoundAPIError):
        client.tools.clear_cdn_cache(with_caches.id, UNKNOWN)
    with pytest.raises(NotFoundAPIError) as caught:
        client.tools.clear_edge_cache(bare.id)
    assert caught.value.kinsta_message == (
        "Could not find data or the user does not have permissions to retrieve it"
    )
    with pytest.raises(NotFoundAPIError):
        client.tools.clear_cdn_cache(bare.id, UNKNOWN)
    counters = sandbox.sandbox.fleet.counters()
    assert not any(k.endswith("cache:clear:accepted") for c in counters.values() for k in c)


def test_the_response_check_allows_only_the_listed_undocumented_statuses() -> None:
    spec = load_spec()
    found = spec.match("POST", "/sites/tools/clear-cache")
    assert isinstance(found, Match)
    not_found = {"message": "Could not find data", "status": 404}
    assert spec.check_response(found, 404, not_found) == []
    assert spec.check_response(found, 404, {"status": 404}) != []  # the body is still checked
    assert spec.check_response(found, 400, {"message": "x", "status": 400}) == [
        "clearSiteCache: status 400 is not documented"
    ]
    backups = spec.match("GET", f"/sites/environments/{UNKNOWN}/backups")
    assert isinstance(backups, Match)
    assert spec.check_response(backups, 409, {"message": "x", "status": 409}) == [
        "getBackups: status 409 is not documented"
    ]
