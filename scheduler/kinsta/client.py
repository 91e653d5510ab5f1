"""KinstaClient: a typed method per endpoint of Kinsta's REST API v2 for WordPress hosting.

Actions that Kinsta runs asynchronously return OperationAccepted (an `operation_id` in any 2xx
body means asynchronous, whatever the status code); poll them with get_operation or
operations.wait_for_operation. Paths and bodies follow openapi.json v1.87.0 exactly.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from scheduler.domain import OperationState
from scheduler.errors import ResponseFormatError
from scheduler.kinsta import models
from scheduler.kinsta.session import (
    SENT_AT,
    WAITED_S,
    ApiSession,
    OperationAccepted,
    OperationStatus,
)

__all__ = ["KinstaClient", "OperationAccepted", "OperationStatus"]


class _Users(models._Response):
    user: models.CompanyUser


class _UsersCompany(models._Response):
    users: list[_Users]


class _UsersBody(models._Response):
    company: _UsersCompany


class _SitesCompany(models._Response):
    sites: list[models.Site]


class _SitesBody(models._Response):
    company: _SitesCompany


class _SiteBody(models._Response):
    site: models.SiteDetail


class _EnvironmentsSite(models._Response):
    environments: list[models.Environment]


class _EnvironmentsBody(models._Response):
    site: _EnvironmentsSite


class _ItemList(models._Response):
    data: list[models.WpItem]


class _ItemsContainer(models._Response):
    wp_plugins: _ItemList | None = None
    wp_themes: _ItemList | None = None


class _ItemsEnvironment(models._Response):
    container_info: _ItemsContainer


class _ItemsBody(models._Response):
    environment: _ItemsEnvironment


class _BackupsEnvironment(models._Response):
    backups: list[models.Backup] = Field(default_factory=list)
    downloadable_backups: list[models.DownloadableBackup] = Field(default_factory=list)


class _BackupsBody(models._Response):
    environment: _BackupsEnvironment


class _DomainsEnvironment(models._Response):
    site_domains: list[models.SiteDomain]


class _DomainsBody(models._Response):
    environment: _DomainsEnvironment


class _DeniedEnvironment(models._Response):
    ip_list: list[str]


class _DeniedBody(models._Response):
    environment: _DeniedEnvironment


class _LogsContainer(models._Response):
    logs: str


class _LogsEnvironment(models._Response):
    container_info: _LogsContainer


class _LogsBody(models._Response):
    environment: _LogsEnvironment


def _flags(**values: Any) -> dict[str, Any]:
    """Optional body fields: only those given."""
    return {k: v for k, v in values.items() if v is not None}


class KinstaClient(ApiSession):
    # --- authentication, company, operations ------------------------------------------------

    def validate(self) -> models.ApiKeyInfo:
        return self._json(self.request("GET", "validate"), models.ApiKeyInfo)

    def list_company_users(self, company_id: str) -> list[models.CompanyUser]:
        body = self._json(self.request("GET", f"company/{company_id}/users"), _UsersBody)
        return [entry.user for entry in body.company.users]

    def get_operation(self, operation_id: str) -> OperationStatus:
        """One poll. 200 done, 202 running, 404 not (yet) known, 500 failed; the body's own
        `status` wins over the HTTP code when both are present (some report failure in a 200).
        A 404 or 500 whose body is not Kinsta's JSON is no answer: KinstaAPIError. One answer
        saying failed is not final: operations.wait_for_operation confirms it."""
        path = f"operations/{operation_id}"
        response = self.request("GET", path, accept=(404, 500))
        try:
            body = self._json(response, models.StatusBody)
        except ResponseFormatError as exc:
            if response.is_success:
                raise
            # Not Kinsta's answer about the operation (a proxy's error page): no answer at all.
            raise self._api_error(response, "GET", "/" + path) from exc
        code = int(body.status) if body.status is not None else response.status_code
        state = {
            200: OperationState.SUCCEEDED,
            202: OperationState.IN_PROGRESS,
            404: OperationState.PENDING,
        }.get(code, OperationState.FAILED if code >= 400 else OperationState.IN_PROGRESS)
        sent_at = response.extensions.get(SENT_AT)
        waited = float(response.extensions.get(WAITED_S, 0.0))
        return OperationStatus(
            state, response.status_code, body.message, body.data, sent_at, waited
        )

    # --- sites -----------------------------------------------------------------------------

    def list_sites(
        self, company_id: str, *, include_environments: bool = False
    ) -> list[models.Site]:
        params = {"company": company_id}
        if include_environments:
            params["include_environments"] = "true"
        return self._json(self.request("GET", "sites", params=params), _SitesBody).company.sites

    def get_site(self, site_id: str) -> models.SiteDetail:
        return self._json(self.request("GET", f"sites/{site_id}"), _SiteBody).site

    def create_site(
        self,
        company_id: str,
        display_name: str,
        region: str,
        *,
        admin_email: str,
        admin_password: str,
        admin_user: str,
        site_title: str,
        wp_language: str = "en_US",
        woocommerce: bool | None = None,
        wordpressseo: bool | None = None,
        is_multisite: bool | None = None,
    ) -> OperationAccepted:
        body = {
            "company": company_id,
            "display_name": display_name,
            "region": region,
            "install_mode": "new",  # deprecated in the spec, yet still required
            "admin_email": admin_email,
            "admin_password": admin_password,
            "admin_user": admin_user,
            "site_title": site_title,
            "wp_language": wp_language,
            **_flags(woocommerce=woocommerce, wordpressseo=wordpressseo, is_multisite=is_multisite),
        }
        return self._accepted(self.request("POST", "sites", json=body))

    def clone_site(
        self, company_id: str, display_name: str, source_env_id: str
    ) -> OperationAccepted:
        body = {"company": company_id, "display_name": display_name, "source_env_id": source_env_id}
        return self._accepted(self.request("POST", "sites/clone", json=body))

    def create_plain_site(
        self, company_id: str, display_name: str, region: str
    ) -> OperationAccepted:
        body = {"company": company_id, "display_name": display_name, "region": region}
        return self._accepted(self.request("POST", "sites/plain", json=body))

    def delete_site(self, site_id: str) -> OperationAccepted:
        return self._accepted(self.request("DELETE", f"sites/{site_id}"))

    # --- environments ------------------------------------------------------------------------

    def get_site_environments(self, site_id: str) -> list[models.Environment]:
        response = self.request("GET", f"sites/{site_id}/environments")
        return self._json(response, _EnvironmentsBody).site.environments

    def create_environment(
        self,
        site_id: str,
        display_name: str,
        *,
        site_title: str,
        admin_email: str,
        admin_password: str,
        admin_user: str,
        is_premium: bool = False,
        wp_language: str = "en_US",
    ) -> OperationAccepted:
        """A new WordPress environment (standard or premium staging)."""
        body = {
            "display_name": display_name,
            "site_title": site_title,
            "is_premium": is_premium,
            "admin_email": admin_email,
            "admin_password": admin_password,
            "admin_user": admin_user,
            "wp_language": wp_language,
        }
        return self._accepted(self.request("POST", f"sites/{site_id}/environments", json=body))

    def create_plain_environment(
        self, site_id: str, display_name: str, *, is_premium: bool = False
    ) -> OperationAccepted:
        body = {"display_name": display_name, "is_premium": is_premium}
        return self._accepted(
            self.request("POST", f"sites/{site_id}/environments/plain", json=body)
        )

    def clone_environment(
        self, site_id: str, display_name: str, source_env_id: str, *, is_premium: bool = False
    ) -> OperationAccepted:
        body = {
            "display_name": display_name,
            "is_premium": is_premium,
            "source_env_id": source_env_id,
        }
        return self._accepted(
            self.request("POST", f"sites/{site_id}/environments/clone", json=body)
        )

    def push_environment(
        self,
        site_id: str,
        source_env_id: str,
        target_env_id: str,
        *,
        push_db: bool = True,
        push_files: bool = True,
        run_search_and_replace: bool = True,
        file_list: list[str] | None = None,
    ) -> OperationAccepted:
        """Push one environment onto another (staging to live)."""
        body: dict[str, Any] = {
            "source_env_id": source_env_id,
            "target_env_id": target_env_id,
            "push_db": push_db,
            "push_files": push_files,
            "run_search_and_replace": run_search_and_replace,
        }
        if file_list:
            body.update(push_files_option="SPECIFIC_FILES", file_list=file_list)
        return self._accepted(self.request("PUT", f"sites/{site_id}/environments", json=body))

    def delete_environment(self, environment_id: str) -> OperationAccepted:
        return self._accepted(self.request("DELETE", f"sites/environments/{environment_id}"))

    # --- tools, edge and CDN caches ---------------------------------------------------------------

    def clear_cache(self, environment_id: str) -> OperationAccepted:
        body = {"environment_id": environment_id}
        return self._accepted(self.request("POST", "sites/tools/clear-cache", json=body))

    def restart_php(self, environment_id: str) -> OperationAccepted:
        body = {"environment_id": environment_id}
        return self._accepted(self.request("POST", "sites/tools/restart-php", json=body))

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
            **_flags(is_opt_out_from_automatic_php_update=opt_out_of_automatic_updates),
        }
        return self._accepted(self.request("PUT", "sites/tools/modify-php-version", json=body))

    def get_denied_ips(self, environment_id: str) -> list[str]:
        response = self.request(
            "GET", "sites/tools/denied-ips", params={"environment_id": environment_id}
        )
        return self._json(response, _DeniedBody).environment.ip_list

    def set_denied_ips(self, environment_id: str, ip_list: list[str]) -> None:
        """Replace the whole list (synchronous)."""
        body = {"environment_id": environment_id, "ip_list": ip_list}
        self.request("PUT", "sites/tools/denied-ips", json=body)

    def clear_edge_cache(
        self,
        environment_id: str,
        *,
        url: str | None = None,
        clear_subdirectories: bool | None = None,
    ) -> OperationAccepted:
        body = {
            "environment_id": environment_id,
            **_flags(url=url, clear_subdirectories=clear_subdirectories),
        }
        return self._accepted(self.request("POST", "sites/edge-caching/clear", json=body))

    def clear_cdn_cache(self, environment_id: str, cdn_cache_id: str) -> OperationAccepted:
        body = {"environment_id": environment_id, "cdn_cache_id": cdn_cache_id}
        return self._accepted(self.request("POST", "sites/cdn/clear-cache", json=body))

    # --- plugins and themes ----------------------------------------------------------------------

    def _items(self, environment_id: str, kind: str) -> list[models.WpItem]:
        body = self._json(
            self.request("GET", f"sites/environments/{environment_id}/{kind}"), _ItemsBody
        )
        container = body.environment.container_info
        found = container.wp_plugins if kind == "plugins" else container.wp_themes
        return found.data if found is not None else []

    def list_plugins(self, environment_id: str) -> list[models.WpItem]:
        return self._items(environment_id, "plugins")

    def list_themes(self, environment_id: str) -> list[models.WpItem]:
        return self._items(environment_id, "themes")

    def update_plugin(self, environment_id: str, name: str, version: str) -> OperationAccepted:
        body = {"name": name, "update_version": version}
        return self._accepted(
            self.request("PUT", f"sites/environments/{environment_id}/plugins", json=body)
        )

    def update_theme(self, environment_id: str, name: str, version: str) -> OperationAccepted:
        body = {"name": name, "update_version": version}
        return self._accepted(
            self.request("PUT", f"sites/environments/{environment_id}/themes", json=body)
        )

    def bulk_update_plugins(self, environment_id: str, names: list[str]) -> OperationAccepted:
        body = {"plugins": [{"name": n} for n in names]}
        path = f"sites/environments/{environment_id}/plugins/bulk-update"
        return self._accepted(self.request("PUT", path, json=body))

    def bulk_update_themes(self, environment_id: str, names: list[str]) -> OperationAccepted:
        body = {"themes": [{"name": n} for n in names]}
        path = f"sites/environments/{environment_id}/themes/bulk-update"
        return self._accepted(self.request("PUT", path, json=body))

    # --- domains --------------------------------------------------------------------------------

    def list_domains(self, environment_id: str) -> list[models.SiteDomain]:
        response = self.request("GET", f"sites/environments/{environment_id}/domains")
        return self._json(response, _DomainsBody).environment.site_domains

    def add_domain(
        self, environment_id: str, domain_name: str, *, is_wildcardless: bool | None = None
    ) -> OperationAccepted:
        body = {"domain_name": domain_name, **_flags(is_wildcardless=is_wildcardless)}
        return self._accepted(
            self.request("POST", f"sites/environments/{environment_id}/domains", json=body)
        )

    def remove_domains(self, environment_id: str, domain_ids: list[str]) -> OperationAccepted:
        body = {"domain_ids": domain_ids}
        return self._accepted(
            self.request("DELETE", f"sites/environments/{environment_id}/domains", json=body)
        )

    # --- backups ---------------------------------------------------------------------------------

    def list_backups(self, environment_id: str) -> list[models.Backup]:
        response = self.request("GET", f"sites/environments/{environment_id}/backups")
        return self._json(response, _BackupsBody).environment.backups

    def list_downloadable_backups(self, environment_id: str) -> list[models.DownloadableBackup]:
        response = self.request("GET", f"sites/environments/{environment_id}/downloadable-backups")
        return self._json(response, _BackupsBody).environment.downloadable_backups

    def create_backup(self, environment_id: str, tag: str = "") -> OperationAccepted:
        path = f"sites/environments/{environment_id}/manual-backups"
        return self._accepted(self.request("POST", path, json={"tag": tag}))

    def restore_backup(
        self, target_environment_id: str, backup_id: int, notified_user_id: str
    ) -> OperationAccepted:
        body = {"backup_id": backup_id, "notified_user_id": notified_user_id}
        path = f"sites/environments/{target_environment_id}/backups/restore"
        return self._accepted(self.request("POST", path, json=body))

    def delete_backup(self, backup_id: int) -> OperationAccepted:
        return self._accepted(self.request("DELETE", f"sites/environments/backups/{backup_id}"))

    # --- logs ------------------------------------------------------------------------------------

    def get_logs(self, environment_id: str, file_name: str = "error", lines: int = 1000) -> str:
        """The last `lines` (max 20000) of error, access or kinsta-cache-perf."""
        params = {"file_name": file_name, "lines": str(min(max(lines, 1), 20000))}
        response = self.request("GET", f"sites/environments/{environment_id}/logs", params=params)
        return self._json(response, _LogsBody).environment.container_info.logs
