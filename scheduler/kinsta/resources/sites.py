"""WordPress sites (Kinsta's "WordPress Sites")."""

from __future__ import annotations

import builtins

from scheduler.kinsta import models
from scheduler.kinsta.resources.base import Resource, flags
from scheduler.kinsta.session import OperationAccepted


class _SitesCompany(models._Response):
    sites: list[models.Site]


class _SitesBody(models._Response):
    company: _SitesCompany


class _SiteBody(models._Response):
    site: models.SiteDetail


class Sites(Resource):
    def list(
        self, company_id: str, *, include_environments: bool = False
    ) -> builtins.list[models.Site]:
        params = {"company": company_id}
        if include_environments:
            params["include_environments"] = "true"
        return self._get("sites", _SitesBody, params=params).company.sites

    def get(self, site_id: str) -> models.SiteDetail:
        return self._get(f"sites/{site_id}", _SiteBody).site

    def create(
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
            **flags(woocommerce=woocommerce, wordpressseo=wordpressseo, is_multisite=is_multisite),
        }
        return self._start("POST", "sites", body)

    def clone(self, company_id: str, display_name: str, source_env_id: str) -> OperationAccepted:
        body = {"company": company_id, "display_name": display_name, "source_env_id": source_env_id}
        return self._start("POST", "sites/clone", body)

    def create_plain(self, company_id: str, display_name: str, region: str) -> OperationAccepted:
        body = {"company": company_id, "display_name": display_name, "region": region}
        return self._start("POST", "sites/plain", body)

    def delete(self, site_id: str) -> OperationAccepted:
        return self._start("DELETE", f"sites/{site_id}")
