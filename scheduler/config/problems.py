"""The problems found in jobs.yaml, each with file, line, job id and field."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from scheduler.config.yaml_source import Located, line_of
from scheduler.errors import Problem


class Problems:
    def __init__(self, file: str, located: Located, data: Any) -> None:
        self.file = file
        self.located = located
        self.data = data
        self.items: list[Problem] = []
        self.settled: set[tuple[str | int, ...]] = set()  # paths already reported

    def job_id_at(self, path: tuple[str | int, ...]) -> str | None:
        if len(path) >= 2 and path[0] == "jobs" and isinstance(path[1], int):
            jobs = self.data.get("jobs") if isinstance(self.data, dict) else None
            if isinstance(jobs, list) and path[1] < len(jobs) and isinstance(jobs[path[1]], dict):
                job_id = jobs[path[1]].get("id")
                return str(job_id) if job_id is not None else f"#{path[1] + 1}"
        return None

    def sorted(self) -> list[Problem]:
        return sorted(self.items, key=lambda p: (p.line is None, p.line or 0))

    def add(self, path: tuple[str | int, ...], message: str) -> None:
        if path in self.settled:
            return
        job_id = self.job_id_at(path)
        field_path = path[2:] if job_id is not None else path
        field = ".".join(str(p) for p in field_path) or None
        self.items.append(Problem(self.file, line_of(self.located, path), message, job_id, field))


def validation_messages(exc: ValidationError) -> list[tuple[tuple[str | int, ...], str]]:
    out = []
    for error in exc.errors():
        loc = tuple(
            p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("str", "dict")))
        )
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "literal_error" and loc == ("version",):
            message = "unsupported version; expected 1"
        elif error["type"] == "tuple_type":  # options hold lists as tuples; YAML says list
            message = "Input should be a valid list"
        out.append((loc, message.removeprefix("Value error, ")))
    return out
