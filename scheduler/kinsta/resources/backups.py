"""An environment's backups (Kinsta's "Backups")."""

from __future__ import annotations

import builtins

from pydantic import Field

from scheduler.kinsta import models
from scheduler.kinsta.resources.base import Resource
from scheduler.kinsta.session import OperationAccepted


class _BackupsEnvironment(models._Response):
    backups: list[models.Backup] = Field(default_factory=list)
    downloadable_backups: list[models.DownloadableBackup] = Field(default_factory=list)


class _BackupsBody(models._Response):
    environment: _BackupsEnvironment


class Backups(Resource):
    def list(self, environment_id: str) -> builtins.list[models.Backup]:
        path = f"sites/environments/{environment_id}/backups"
        return self._get(path, _BackupsBody).environment.backups

    def list_downloadable(self, environment_id: str) -> builtins.list[models.DownloadableBackup]:
        path = f"sites/environments/{environment_id}/downloadable-backups"
        return self._get(path, _BackupsBody).environment.downloadable_backups

    def create(self, environment_id: str, tag: str = "") -> OperationAccepted:
        return self._start(
            "POST", f"sites/environments/{environment_id}/manual-backups", {"tag": tag}
        )

    def restore(
        self, target_environment_id: str, backup_id: int, notified_user_id: str
    ) -> OperationAccepted:
        body = {"backup_id": backup_id, "notified_user_id": notified_user_id}
        path = f"sites/environments/{target_environment_id}/backups/restore"
        return self._start("POST", path, body)

    def delete(self, backup_id: int) -> OperationAccepted:
        return self._start("DELETE", f"sites/environments/backups/{backup_id}")
