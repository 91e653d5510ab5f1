"""Site tools on one environment: caches (site, edge, CDN), PHP and the IP deny list (Kinsta's
"WordPress Site Tools", "WordPress Edge Caching" and "WordPress CDN")."""

from __future__ import annotations

from scheduler.kinsta import models
from scheduler.kinsta.resources.base import Resource, flags
from scheduler.kinsta.session import OperationAccepted


class _DeniedEnvironment(models._Response):
    ip_list: list[str]


class _DeniedBody(models._Response):
    environment: _DeniedEnvironment


class Tools(Resource):
    def clear_cache(self, environment_id: str) -> OperationAccepted:
        return self._start("POST", "sites/tools/clear-cache", {"environment_id": environment_id})

    def restart_php(self, environment_id: str) -> OperationAccepted:
        return self._start("POST", "sites/tools/restart-php", {"environment_id": environment_id})

    def set_php_version(
        self,
        environment_id: str,
        php_version: str,
        *,
        opt_out_of_automatic_updates: bool | None = None,
    ) -> OperationAccepted:
        body = {
            "environment_id": environment_id,
            "php_version": php_version,
            **flags(is_opt_out_from_automatic_php_update=opt_out_of_automatic_updates),
        }
        return self._start("PUT", "sites/tools/modify-php-version", body)

    def get_denied_ips(self, environment_id: str) -> list[str]:
        params = {"environment_id": environment_id}
        return self._get("sites/tools/denied-ips", _DeniedBody, params=params).environment.ip_list

    def set_denied_ips(self, environment_id: str, ip_list: list[str]) -> None:
        """Replace the whole list (synchronous)."""
        body = {"environment_id": environment_id, "ip_list": ip_list}
        self._session.request("PUT", "sites/tools/denied-ips", json=body)

    def clear_edge_cache(
        self,
        environment_id: str,
        *,
        url: str | None = None,
        clear_subdirectories: bool | None = None,
    ) -> OperationAccepted:
        body = {
            "environment_id": environment_id,
            **flags(url=url, clear_subdirectories=clear_subdirectories),
        }
        return self._start("POST", "sites/edge-caching/clear", body)

    def clear_cdn_cache(self, environment_id: str, cdn_cache_id: str) -> OperationAccepted:
        body = {"environment_id": environment_id, "cdn_cache_id": cdn_cache_id}
        return self._start("POST", "sites/cdn/clear-cache", body)
