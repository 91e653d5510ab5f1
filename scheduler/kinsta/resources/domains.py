"""An environment's domains (Kinsta's "WordPress Site Domains")."""

from __future__ import annotations

import builtins

from scheduler.kinsta import models
from scheduler.kinsta.resources.base import Resource, flags
from scheduler.kinsta.session import OperationAccepted


class _DomainsEnvironment(models._Response):
    site_domains: list[models.SiteDomain]


class _DomainsBody(models._Response):
    environment: _DomainsEnvironment


class Domains(Resource):
    def list(self, environment_id: str) -> builtins.list[models.SiteDomain]:
        path = f"sites/environments/{environment_id}/domains"
        return self._get(path, _DomainsBody).environment.site_domains

    def add(
        self, environment_id: str, domain_name: str, *, is_wildcardless: bool | None = None
    ) -> OperationAccepted:
        body = {"domain_name": domain_name, **flags(is_wildcardless=is_wildcardless)}
        return self._start("POST", f"sites/environments/{environment_id}/domains", body)

    def remove(self, environment_id: str, domain_ids: builtins.list[str]) -> OperationAccepted:
        body = {"domain_ids": domain_ids}
        return self._start("DELETE", f"sites/environments/{environment_id}/domains", body)
