"""Typed shapes of Kinsta responses (only the fields we use; unknown fields are ignored)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Domain(_Response):
    id: str | None = None
    name: str


class ContainerInfo(_Response):
    id: str | None = None
    php_engine_version: str | None = None


class Environment(_Response):
    id: str
    name: str
    display_name: str = ""
    is_premium: bool = False
    cdn_cache_id: str | None = None
    id_edge_cache: str | None = None
    primary_domain: Domain | None = Field(None, alias="primaryDomain")
    domains: list[Domain] = []
    wordpress_version: str | None = None
    container_info: ContainerInfo | None = None


class SiteLabel(_Response):
    id: str | None = None
    name: str


class Site(_Response):
    id: str
    name: str
    display_name: str = ""
    status: str | None = None
    labels: list[SiteLabel] = Field([], alias="siteLabels")
    environments: list[Environment] = []


class ApiKeyInfo(_Response):
    name: str
    company: str
    status: str
    expires_at: str | None = None


class OperationAcceptedBody(_Response):
    operation_id: str | None = None
    message: str = ""
    status: int | None = None


class StatusBody(_Response):
    message: str = ""
    status: int | None = None
    data: Any = None


class CompanyUser(_Response):
    id: str
    email: str
    full_name: str = ""


class SiteDetail(_Response):
    id: str
    name: str
    display_name: str = ""
    company_id: str | None = None
    status: str | None = None
    environments: list[Environment] = []


class WpItem(_Response):
    """A plugin or theme on an environment. `update` is "available" when one is pending."""

    name: str
    title: str = ""
    status: str | None = None
    version: str | None = None
    update: str | None = None
    update_version: str | None = None

    @property
    def has_update(self) -> bool:
        return self.update == "available" and bool(self.update_version)


class Backup(_Response):
    id: int
    name: str = ""
    note: str | None = None
    type: str = ""
    created_at: int  # epoch milliseconds


class DownloadableBackup(_Response):
    id: str
    created_at: int
    download_link: str | None = None
    expires_at: int | None = None
    is_generation_in_progress: bool = False


class SiteDomain(_Response):
    id: str
    name: str
    uses_cloudflare_dns: bool | None = None
