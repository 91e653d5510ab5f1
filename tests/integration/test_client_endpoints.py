"""Every KinstaClient method against the sandbox over real HTTP. The `sandbox`
fixture fails the test if a request (or the sandbox's answer) does not match openapi.json; each
test checks the response parsed and, for actions, the effect on the sandbox's state."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import get_type_hints

import pytest

from scheduler.clock import SystemClock
from scheduler.domain import OperationState, Polling, RateLimits, Secret
from scheduler.kinsta import KinstaClient, OperationAccepted, RateGovernor
from scheduler.kinsta.operations import wait_for_operation
from scheduler.sandbox import DEFAULT_API_KEY, SandboxServer
from scheduler.sandbox.state import Fleet, SandboxEnvironment
from tests.conftest import checked_sandbox

FAST = Polling(first_poll_s=0.01, max_interval_s=0.05, not_found_grace_s=5, deadline_s=20)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """Operations 500 times faster than Kinsta's: site creation takes 0.3 s."""
    yield from checked_sandbox(time_scale=0.002)


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[KinstaClient]:
    clock = SystemClock()
    with KinstaClient(
        sandbox.url, Secret(DEFAULT_API_KEY), RateGovernor(RateLimits(), clock), clock
    ) as client:
        yield client


@pytest.fixture
def fleet(sandbox: SandboxServer) -> Fleet:
    return sandbox.sandbox.fleet


def live(fleet: Fleet, index: int = 0) -> SandboxEnvironment:
    return fleet.sites[index].environments[0]


def done(client: KinstaClient, accepted: OperationAccepted) -> object:
    result = wait_for_operation(client, accepted.operation_id, FAST, SystemClock())
    assert result.state is OperationState.SUCCEEDED, result
    return client.get_operation(accepted.operation_id).data


def test_company_users(client: KinstaClient, fleet: Fleet) -> None:
    users = client.company.list_users(fleet.company_id)
    assert [u.email for u in users] == [u["email"] for u in fleet.users]


def test_get_site(client: KinstaClient, fleet: Fleet) -> None:
    site = client.sites.get(fleet.sites[0].id)
    assert site.name == fleet.sites[0].name and site.company_id == fleet.company_id
    assert site.environments[0].primary_domain is not None


def test_create_clone_plain_and_delete_sites(client: KinstaClient, fleet: Fleet) -> None:
    before = len(fleet.sites)
    data = done(client, client.sites.create(
        fleet.company_id, "New Shop", "us-central1", admin_email="a@b.example", admin_password="pw-123456",
        admin_user="admin", site_title="New Shop", woocommerce=True,
    ))  # fmt: skip
    assert isinstance(data, dict) and fleet.site(data["idSite"]) is not None
    done(client, client.sites.clone(fleet.company_id, "Copy Of One", live(fleet).id))
    done(client, client.sites.create_plain(fleet.company_id, "Plain One", "us-central1"))
    assert len(fleet.sites) == before + 3
    done(client, client.sites.delete(data["idSite"]))
    assert fleet.site(data["idSite"]) is None


def test_environments_create_clone_plain_push_delete(client: KinstaClient, fleet: Fleet) -> None:
    site = fleet.sites[1]
    done(client, client.environments.create(
        site.id, "Dev", site_title="Dev", admin_email="a@b.example", admin_password="pw-123456", admin_user="admin",
    ))  # fmt: skip
    # Dev is the site's standard staging environment; Kinsta allows one, so Plain is premium.
    done(client, client.environments.create_plain(site.id, "Plain", is_premium=True))
    cloned = done(
        client, client.environments.clone(site.id, "Copy", site.environments[0].id, is_premium=True)
    )
    assert isinstance(cloned, dict)
    names = [e.name for e in client.environments.list(site.id)]
    assert {"dev", "plain", "copy"} <= set(names)
    source = fleet.environment(cloned["idEnv"])
    assert source is not None
    next(iter(source.plugins.values())).version = "99.0.0"
    done(client, client.environments.push(site.id, source.id, site.environments[0].id))
    assert "99.0.0" in {p.version for p in site.environments[0].plugins.values()}
    done(client, client.environments.delete(source.id))
    assert fleet.environment(source.id) is None


def test_tools(client: KinstaClient, fleet: Fleet) -> None:
    # An environment with a CDN and an edge cache (some have neither: test_sandbox_fleet.py).
    env = next(e for s in fleet.sites for e in s.environments if e.cdn_cache_id)
    assert env.cdn_cache_id is not None and env.edge_cache_id is not None
    done(client, client.tools.clear_cache(env.id))
    done(client, client.tools.restart_php(env.id))
    done(client, client.tools.set_php_version(env.id, "8.3", opt_out_of_automatic_updates=False))
    assert env.php_version == "8.3"
    assert client.environments.list(env.site_id)[0].container_info is not None
    done(
        client,
        client.tools.clear_edge_cache(env.id, url="https://x.example/", clear_subdirectories=True),
    )
    done(client, client.tools.clear_cdn_cache(env.id, env.cdn_cache_id))
    assert {
        "cache:clear:done",
        "php:restart:done",
        "edgeCache:clear:done",
        "cdn-cache:clear:done",
    } <= set(env.counters)


def test_denied_ips(client: KinstaClient, fleet: Fleet) -> None:
    env = live(fleet)
    assert client.tools.get_denied_ips(env.id) == []
    client.tools.set_denied_ips(env.id, ["203.0.113.7", "198.51.100.0/24"])
    assert client.tools.get_denied_ips(env.id) == ["203.0.113.7", "198.51.100.0/24"]


def test_plugins_and_themes(client: KinstaClient, fleet: Fleet) -> None:
    env = live(fleet)
    plugins = client.plugins.list(env.id)
    assert {p.name for p in plugins} == set(env.plugins)
    themes = client.themes.list(env.id)
    assert {t.name for t in themes} == set(env.themes)
    first = plugins[0]
    done(client, client.plugins.update(env.id, first.name, "50.0.0"))
    assert env.plugins[first.name].version == "50.0.0"
    done(client, client.themes.update(env.id, themes[0].name, "7.7.7"))
    assert env.themes[themes[0].name].version == "7.7.7"
    done(client, client.plugins.bulk_update(env.id, [p.name for p in plugins]))
    assert not any(p.has_update for p in client.plugins.list(env.id))
    done(client, client.themes.bulk_update(env.id, [t.name for t in themes]))
    assert not any(t.has_update for t in client.themes.list(env.id))


def test_domains(client: KinstaClient, fleet: Fleet) -> None:
    env = live(fleet)
    done(client, client.domains.add(env.id, "shop.example.org", is_wildcardless=True))
    added = [d for d in client.domains.list(env.id) if d.name == "shop.example.org"]
    assert len(added) == 1
    done(client, client.domains.remove(env.id, [added[0].id]))
    assert [d.name for d in client.domains.list(env.id)] == [env.domain]


def test_backups(client: KinstaClient, fleet: Fleet) -> None:
    env = live(fleet)
    automatic = client.backups.list(env.id)
    assert len(automatic) == 3 and all(b.type == "automatic" for b in automatic)
    assert client.backups.list_downloadable(env.id) == []
    done(client, client.backups.create(env.id, tag="before-updates"))
    manual = [b for b in client.backups.list(env.id) if b.type == "manual"]
    assert len(manual) == 1 and manual[0].note == "before-updates"
    name = next(iter(env.plugins))
    before = env.plugins[name].version
    env.plugins[name].version = "0.0.1"
    done(client, client.backups.restore(env.id, manual[0].id, fleet.users[0]["id"]))
    assert env.plugins[name].version == before
    done(client, client.backups.delete(manual[0].id))
    # Left: the automatic ones and the system backup Kinsta took before the restore.
    left = client.backups.list(env.id)
    assert [b.type for b in left] == ["automatic"] * 3 + ["system"]


def test_logs(client: KinstaClient, fleet: Fleet) -> None:
    env = live(fleet)
    assert "PHP Warning" in client.logs.get(env.id, "error", lines=2)
    assert len(client.logs.get(env.id, "access", lines=2).splitlines()) == 2


KINSTA_TESTED = {
    "validate", "get_operation", "company.list_users", "sites.list", "sites.get", "sites.create", "sites.clone",
    "sites.create_plain", "sites.delete", "environments.list", "environments.create",
    "environments.create_plain", "environments.clone", "environments.push", "environments.delete",
    "tools.clear_cache", "tools.restart_php", "tools.set_php_version", "tools.get_denied_ips",
    "tools.set_denied_ips", "tools.clear_edge_cache", "tools.clear_cdn_cache", "plugins.list", "themes.list",
    "plugins.update", "themes.update", "plugins.bulk_update", "themes.bulk_update", "domains.list",
    "domains.add", "domains.remove", "backups.list", "backups.list_downloadable", "backups.create",
    "backups.restore", "backups.delete", "logs.get",
}  # fmt: skip


def _public(cls: type) -> set[str]:
    own = {n for n, v in vars(cls).items() if inspect.isfunction(v) and not n.startswith("_")}
    return own


def _endpoint_methods() -> set[str]:
    """KinstaClient's own methods, and each endpoint group's as `group.method`."""
    groups = {
        name: get_type_hints(value.func)["return"]
        for name, value in vars(KinstaClient).items()
        if isinstance(value, cached_property)
    }
    return _public(KinstaClient) | {
        f"{name}.{method}" for name, group in groups.items() for method in _public(group)
    }


def test_every_endpoint_method_has_a_contract_test() -> None:
    assert _endpoint_methods() == KINSTA_TESTED
    here = Path(__file__).parent
    source = "".join(
        (here / f).read_text() for f in (Path(__file__).name, "test_client_contract.py")
    )
    assert {m for m in KINSTA_TESTED if f".{m}(" not in source} == set()
