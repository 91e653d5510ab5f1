"""HostingClient: Kinsta's application, static-site and database endpoints (openapi.json v1.87.0).

Kinsta moved these to Sevalla on 2026-01-31 (REFERENCE.md section 4); Sevalla's "v2 legacy" API
keeps the same paths and shapes at its own base URL, which is why it is configurable here
(`kinsta.hosting_api_url`, default HOSTING_API_URL). Shapes vary between the two providers, so
results are returned as JSON objects (dicts) rather than fixed models; listings are unwrapped.
"""

from __future__ import annotations

from typing import Any

from scheduler.errors import ResponseFormatError
from scheduler.kinsta.session import ApiSession

HOSTING_API_URL = "https://api.sevalla.com/v2"
APP_METRICS = (
    "bandwidth", "build-time", "run-time", "http-requests", "response-time", "slowest-requests",
    "cpu-usage", "memory-usage",
)  # fmt: skip

JsonObject = dict[str, Any]


class HostingClient(ApiSession):
    def _object(self, method: str, path: str, **kwargs: Any) -> JsonObject:
        response = self.request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError as exc:
            raise ResponseFormatError("body is not JSON", method=method, path="/" + path) from exc
        if not isinstance(body, dict):
            raise ResponseFormatError("body is not a JSON object", method=method, path="/" + path)
        return body

    def _items(
        self, path: str, company_id: str, limit: int, offset: int, *keys: str
    ) -> list[JsonObject]:
        params = {"company": company_id, "limit": str(limit), "offset": str(offset)}
        node: Any = self._object("GET", path, params=params)
        for key in keys:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        items = node.get("items", []) if isinstance(node, dict) else []
        return [item for item in items if isinstance(item, dict)]

    # --- static sites ------------------------------------------------------------------------

    def list_static_sites(
        self, company_id: str, *, limit: int = 10, offset: int = 0
    ) -> list[JsonObject]:
        return self._items("static-sites", company_id, limit, offset, "company", "static_sites")

    def get_static_site(self, static_site_id: str) -> JsonObject:
        return self._object("GET", f"static-sites/{static_site_id}")

    def update_static_site(self, static_site_id: str, **fields: Any) -> JsonObject:
        return self._object("PUT", f"static-sites/{static_site_id}", json=fields)

    def delete_static_site(self, static_site_id: str) -> JsonObject:
        return self._object("DELETE", f"static-sites/{static_site_id}")

    def get_static_site_deployment(self, deployment_id: str) -> JsonObject:
        return self._object("GET", f"static-sites/deployments/{deployment_id}")

    def deploy_static_site(self, static_site_id: str, *, branch: str | None = None) -> JsonObject:
        body = {"static_site_id": static_site_id, **({"branch": branch} if branch else {})}
        return self._object("POST", "static-sites/deployments", json=body)

    def redeploy_static_site(
        self, static_site_id: str, *, deployment_id: str | None = None
    ) -> JsonObject:
        body = {
            "static_site_id": static_site_id,
            **({"deployment_id": deployment_id} if deployment_id else {}),
        }
        return self._object("POST", "static-sites/deployments/redeploy", json=body)

    # --- applications ------------------------------------------------------------------------

    def list_applications(
        self, company_id: str, *, limit: int = 10, offset: int = 0
    ) -> list[JsonObject]:
        return self._items("applications", company_id, limit, offset, "company", "apps")

    def get_application(self, app_id: str) -> JsonObject:
        return self._object("GET", f"applications/{app_id}")

    def update_application(self, app_id: str, **fields: Any) -> JsonObject:
        return self._object("PUT", f"applications/{app_id}", json=fields)

    def delete_application(self, app_id: str) -> JsonObject:
        return self._object("DELETE", f"applications/{app_id}")

    def create_internal_connection(
        self, app_id: str, target_type: str, target_id: str
    ) -> JsonObject:
        body = {"target_type": target_type, "target_id": target_id}
        return self._object("POST", f"applications/{app_id}/internal-connections", json=body)

    def toggle_application_cdn(self, app_id: str) -> JsonObject:
        return self._object("POST", f"applications/{app_id}/cdn/toggle-status")

    def toggle_application_edge_cache(self, app_id: str) -> JsonObject:
        return self._object("POST", f"applications/{app_id}/edge-cache/toggle-status")

    def clear_application_cache(self, app_id: str) -> JsonObject:
        return self._object("POST", f"applications/{app_id}/clear-cache")

    def get_application_metric(
        self, app_id: str, metric: str, *, interval_s: int, timeframe_start: str, timeframe_end: str
    ) -> JsonObject:
        if metric not in APP_METRICS:
            raise ValueError(f"unknown metric {metric!r} (one of {', '.join(APP_METRICS)})")
        params = {
            "interval_in_seconds": str(interval_s),
            "timeframe_start": timeframe_start,
            "timeframe_end": timeframe_end,
        }
        return self._object("GET", f"applications/{app_id}/metrics/{metric}", params=params)

    def get_application_deployment(self, deployment_id: str) -> JsonObject:
        return self._object("GET", f"applications/deployments/{deployment_id}")

    def deploy_application(
        self,
        app_id: str,
        *,
        branch: str | None = None,
        docker_image: str | None = None,
        is_restart: bool | None = None,
    ) -> JsonObject:
        optional = {"branch": branch, "docker_image": docker_image, "is_restart": is_restart}
        body = {"app_id": app_id, **{k: v for k, v in optional.items() if v is not None}}
        return self._object("POST", "applications/deployments", json=body)

    def promote_application(self, source_app_id: str, target_app_ids: list[str]) -> JsonObject:
        body = {"source_app_id": source_app_id, "target_app_ids": target_app_ids}
        return self._object("POST", "applications/promote", json=body)

    def get_process(self, process_id: str) -> JsonObject:
        return self._object("GET", f"applications/processes/{process_id}")

    def update_process(self, process_id: str, **fields: Any) -> JsonObject:
        return self._object("PUT", f"applications/processes/{process_id}", json=fields)

    def list_pipelines(
        self, company_id: str, *, limit: int = 10, offset: int = 0
    ) -> list[JsonObject]:
        return self._items("pipelines", company_id, limit, offset, "company", "pipelines")

    def create_preview_app(self, pipeline_id: str, branch: str) -> JsonObject:
        return self._object(
            "POST", f"pipelines/{pipeline_id}/create-preview-app", json={"branch": branch}
        )

    # --- databases ------------------------------------------------------------------------------

    def list_databases(
        self, company_id: str, *, limit: int = 10, offset: int = 0
    ) -> list[JsonObject]:
        items = self._items("databases", company_id, limit, offset, "company", "databases")
        return items or self._items("databases", company_id, limit, offset, "databases")

    def create_database(
        self,
        company_id: str,
        *,
        location: str,
        resource_type: str,
        display_name: str,
        db_name: str,
        db_password: str,
        db_type: str,
        version: str,
        db_user: str | None = None,
    ) -> JsonObject:
        body = {
            "company_id": company_id,
            "location": location,
            "resource_type": resource_type,
            "display_name": display_name,
            "db_name": db_name,
            "db_password": db_password,
            "type": db_type,
            "version": version,
            **({"db_user": db_user} if db_user else {}),
        }
        return self._object("POST", "databases", json=body)

    def get_database(
        self, database_id: str, *, internal: bool = True, external: bool = True
    ) -> JsonObject:
        params = {"internal": str(internal).lower(), "external": str(external).lower()}
        return self._object("GET", f"databases/{database_id}", params=params)

    def update_database(self, database_id: str, **fields: Any) -> JsonObject:
        return self._object("PUT", f"databases/{database_id}", json=fields)

    def delete_database(self, database_id: str) -> JsonObject:
        return self._object("DELETE", f"databases/{database_id}")
