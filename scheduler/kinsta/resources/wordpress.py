"""An environment's plugins or themes (Kinsta's "WordPress Site Themes & Plugins"): the same
three endpoints for each kind, so one class serves `client.plugins` and `client.themes`."""

from __future__ import annotations

import builtins
from typing import Any, Literal

from scheduler.kinsta import models
from scheduler.kinsta.resources.base import Resource
from scheduler.kinsta.session import ApiSession, OperationAccepted

Kind = Literal["plugins", "themes"]


class _ItemList(models._Response):
    data: list[models.WpItem]


class _ItemsContainer(models._Response):
    wp_plugins: _ItemList | None = None
    wp_themes: _ItemList | None = None


class _ItemsEnvironment(models._Response):
    container_info: _ItemsContainer


class _ItemsBody(models._Response):
    environment: _ItemsEnvironment


class WpItems(Resource):
    def __init__(self, session: ApiSession, kind: Kind) -> None:
        super().__init__(session)
        self.kind = kind

    def list(self, environment_id: str) -> builtins.list[models.WpItem]:
        body = self._get(f"sites/environments/{environment_id}/{self.kind}", _ItemsBody)
        container = body.environment.container_info
        found = container.wp_plugins if self.kind == "plugins" else container.wp_themes
        return found.data if found is not None else []

    def update(self, environment_id: str, name: str, version: str) -> OperationAccepted:
        body = {"name": name, "update_version": version}
        return self._start("PUT", f"sites/environments/{environment_id}/{self.kind}", body)

    def bulk_update(self, environment_id: str, names: builtins.list[str]) -> OperationAccepted:
        body: dict[str, Any] = {self.kind: [{"name": n} for n in names]}
        path = f"sites/environments/{environment_id}/{self.kind}/bulk-update"
        return self._start("PUT", path, body)
