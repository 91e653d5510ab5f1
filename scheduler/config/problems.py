"""The problems found in jobs.yaml, each with file, line, job id and field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from scheduler.config.yaml_source import Located, line_of
from scheduler.errors import Problem

ModelT = TypeVar("ModelT", bound=BaseModel)


class Problems:
    def __init__(self, file: str, located: Located, data: Any) -> None:
        self.file = file
        self.located = located
        self.data = data
        self.items: list[Problem] = []
        # Paths already reported: nothing more is said at them or below them.
        self.settled: set[tuple[str | int, ...]] = set()

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
        if any(path[:end] in self.settled for end in range(len(path) + 1)):
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


def validate_leniently(
    model: type[ModelT],
    data: Any,
    at: tuple[str | int, ...],
    problems: Problems,
    stand_ins: Mapping[str, Any],
) -> tuple[ModelT | None, set[str | int]]:
    """`data` as `model`, every problem in it reported; and, so that the checks which follow
    still see what is right (one unknown key must not hide a duplicate id or a schedule that
    never fires), when some keys are wrong: the model of the others, with `stand_ins` (valid
    values that provoke nothing) for the wrong ones it cannot do without. Returns the model
    (None when not even that validates) and the wrong keys, whose paths are settled: what the
    later checks would say of a default standing in for them is not said."""
    try:
        return model.model_validate(data), set()
    except ValidationError as exc:
        errors = validation_messages(exc)
    for loc, message in errors:
        problems.add((*at, *loc), message)
    wrong = {loc[0] for loc, _ in errors if loc}
    if not isinstance(data, dict) or any(not loc for loc, _ in errors):
        return None, wrong  # the whole value is wrong (not a mapping, or a rule across keys)
    problems.settled.update((*at, key) for key in wrong)
    kept = {k: v for k, v in data.items() if k not in wrong}
    kept.update({k: v for k, v in stand_ins.items() if k in wrong})
    try:
        return model.model_validate(kept), wrong
    except ValidationError:
        return None, wrong
