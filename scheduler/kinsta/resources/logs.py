"""An environment's log files (Kinsta's "Logs")."""

from __future__ import annotations

from scheduler.kinsta import models
from scheduler.kinsta.resources.base import Resource


class _LogsContainer(models._Response):
    logs: str


class _LogsEnvironment(models._Response):
    container_info: _LogsContainer


class _LogsBody(models._Response):
    environment: _LogsEnvironment


class Logs(Resource):
    def get(self, environment_id: str, file_name: str = "error", lines: int = 1000) -> str:
        """The last `lines` (max 20000) of error, access or kinsta-cache-perf."""
        params = {"file_name": file_name, "lines": str(min(max(lines, 1), 20000))}
        path = f"sites/environments/{environment_id}/logs"
        return self._get(path, _LogsBody, params=params).environment.container_info.logs
