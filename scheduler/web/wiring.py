"""The dashboard over a running daemon's services: its history store, the jobs.yaml it holds
now, its clock, the sites its runs last listed (company and labels; no request is sent for a
page) and its keys' fingerprints."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from scheduler.bootstrap import Services
from scheduler.daemon import Daemon
from scheduler.httpd import Routes
from scheduler.web.app import Dashboard, Sources
from scheduler.web.auth import HOSTS_ENV, TOKEN_ENV
from scheduler.web.fleet import SiteFact


def dashboard_routes(services: Services, daemon: Daemon, host: str) -> Callable[[Routes], Routes]:
    """What `run --http-port` adds to its routes: the dashboard's pages."""

    def facts() -> Mapping[str, SiteFact]:
        found: dict[str, SiteFact] = {}
        for company, runner in services.runners.items():
            for site in runner.known_sites():
                labels = tuple(label.name for label in site.labels)
                found[site.name] = SiteFact(company, labels)
        return found

    def companies() -> Mapping[str, str]:
        return {governor.scope: name for name, governor in services.governors.items()}

    sources = Sources(
        config=lambda: daemon.config,
        now=services.clock.now,
        facts=facts,
        companies=companies,
    )
    dashboard = Dashboard(
        services.store, sources, os.environ.get(TOKEN_ENV), os.environ.get(HOSTS_ENV)
    )
    return lambda routes: dashboard.add_routes(routes, host)
