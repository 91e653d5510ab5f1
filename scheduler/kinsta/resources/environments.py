"""A site's environments (Kinsta's "WordPress Site Environments")."""

from __future__ import annotations

import builtins
from typing import Any

from scheduler.kinsta import models
from scheduler.kinsta.resources.base import Resource
from scheduler.kinsta.session import OperationAccepted


class _EnvironmentsSite(models._Response):
    environments: list[models.Environment]


class _EnvironmentsBody(models._Response):
    site: _EnvironmentsSite


class Environments(Resource):
    def list(self, site_id: str) -> builtins.list[models.Environment]:
        return self._get(f"sites/{site_id}/environments", _EnvironmentsBody).site.environments

    def create(
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
        return self._start("POST", f"sites/{site_id}/environments", body)

    def create_plain(
        self, site_id: str, display_name: str, *, is_premium: bool = False
    ) -> OperationAccepted:
        body = {"display_name": display_name, "is_premium": is_premium}
        return self._start("POST", f"sites/{site_id}/environments/plain", body)

    def clone(
        self, site_id: str, display_name: str, source_env_id: str, *, is_premium: bool = False
    ) -> OperationAccepted:
        body = {
            "display_name": display_name,
            "is_premium": is_premium,
            "source_env_id": source_env_id,
        }
        return self._start("POST", f"sites/{site_id}/environments/clone", body)

    def push(
        self,
        site_id: str,
        source_env_id: str,
        target_env_id: str,
        *,
        push_db: bool = True,
        push_files: bool = True,
        run_search_and_replace: bool = True,
        file_list: builtins.list[str] | None = None,
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
        return self._start("PUT", f"sites/{site_id}/environments", body)

    def delete(self, environment_id: str) -> OperationAccepted:
        return self._start("DELETE", f"sites/environments/{environment_id}")
