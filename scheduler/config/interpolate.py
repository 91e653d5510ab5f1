"""${VAR} and ${VAR:-default} in every string of jobs.yaml."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_VAR_NESTING = 8


def interpolate(
    value: Any, env: Mapping[str, str], path: tuple[str | int, ...], missing: list[Any]
) -> Any:
    """${VAR} and ${VAR:-default} in every string; a default may hold references itself. What
    cannot be resolved goes to `missing` as (path, message)."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        try:
            return _expand(value, env, path, missing, 0)
        except ValueError as exc:
            missing.append((path, str(exc)))
            return ""
    if isinstance(value, dict):
        return {k: interpolate(v, env, (*path, str(k)), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, (*path, i), missing) for i, v in enumerate(value)]
    return value


def _expand(
    text: str, env: Mapping[str, str], path: tuple[str | int, ...], missing: list[Any], depth: int
) -> str:
    if depth > MAX_VAR_NESTING:
        raise ValueError(f"${{...}} defaults nested more than {MAX_VAR_NESTING} deep")
    out: list[str] = []
    position = 0
    while (start := text.find("${", position)) != -1:
        out.append(text[position:start])
        end = _closing_brace(text, start + 2)
        name, colon_dash, default = text[start + 2 : end].partition(":-")
        if not _VAR_NAME.match(name):
            reference = "${" + name[:40] + "}"
            raise ValueError(f"{reference} is not a variable reference (${{NAME}} or ${{NAME:-d}})")
        if name in env:
            out.append(env[name])
        elif colon_dash:
            out.append(_expand(default, env, path, missing, depth + 1))
        else:
            missing.append((path, f"environment variable {name} is not set (in ${{{name}}})"))
        position = end + 1
    out.append(text[position:])
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """The index of the } that closes a ${ whose body starts at `start` (nested ${...} count)."""
    depth = 1
    for index in range(start, len(text)):
        if text.startswith("${", index):
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError("a ${ without its closing }")
