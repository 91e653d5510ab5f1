"""The JSON Schema of jobs.yaml, generated from the models that validate it: the file's sections
(shape.py) and each action's options model (the catalogue), so a key added to a model is in
the schema at once. For editors (yaml-language-server) and for linting in CI; `validate`
remains the authority.

What the models say is turned into what the file may hold as written:
- a job's `actions` are the catalogue's: a bare name, or `{name: options}` with that action's
  options (or nothing), as config/jobs.py reads them;
- any scalar may be a `${VAR}` reference (config/interpolate.py resolves it before the models
  see it), so wherever a value other than free text goes, a string holding `${` goes too;
- draft-07, the newest draft editors fully support: `definitions`, and a `$ref` alone in its
  schema (pydantic writes 2020-12, where keywords beside a `$ref` count).

Where a rule spans several values (each wave further than the last, jitter shorter than the
interval, a cron expression that fires) or needs a lookup (time zones, an action's environment),
the schema accepts what the loader then rejects; it never rejects what the loader accepts,
except values only pydantic's lax coercion lets through (a quoted number, 1 for true)."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model
from pydantic.json_schema import GenerateJsonSchema

from scheduler.actions import Options, registry
from scheduler.config.jobs import JOB_ID
from scheduler.config.shape import FileModel, JobModel

DIALECT = "http://json-schema.org/draft-07/schema#"
TITLE = "kinsta-scheduler jobs.yaml"
INTERPOLATED = {"type": "string", "pattern": r"\$\{", "description": "${VAR} or ${VAR:-default}"}

Node = dict[str, Any]
_SCHEMA_MAPS = ("properties", "definitions")  # name -> schema
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf")
_SCHEMAS = ("items", "additionalProperties", "not")
_META = ("description", "default")
_STRING_RULES = ("pattern", "minLength", "maxLength", "format")
_ACTIONS = "in order, on each target: an action's name, or {name: {its options}}"


def json_schema() -> Node:
    """The schema of jobs.yaml as it stands in the code (a fresh dict each call)."""
    generated = _file_model().model_json_schema(
        by_alias=True, ref_template="#/definitions/{model}", schema_generator=_Generator
    )
    generated["definitions"] = generated.pop("$defs", {})
    shaped = _walk(_walk(generated, _draft7), _interpolable)
    description = shaped.pop("description", None)
    return {"$schema": DIALECT, "title": TITLE, "description": description, **shaped}


class _Generator(GenerateJsonSchema):
    """No titles made up from field names ("Per Minute"): the key says it, and titles would hide
    the descriptions in editors' hovers."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def normalize_name(self, name: str) -> str:
        return super().normalize_name(name).lstrip("_")  # private models: _Targets -> Targets


def _file_model() -> type[BaseModel]:
    """FileModel with its jobs (validated one by one by config/jobs.py, so `list[Any]` there)
    as JobModel, and each job's actions as the catalogue's."""
    catalogue = registry()
    names = Annotated[str, WithJsonSchema({"enum": list(catalogue)})]
    steps = [_step(name, definition.options) for name, definition in catalogue.items()]
    action: Any = functools.reduce(operator.or_, steps, names)
    job = create_model(
        "Job",
        __base__=JobModel,
        id=(str, Field(pattern=JOB_ID.pattern, description="letters, digits and - _ . :")),
        actions=(list[action], Field(min_length=1, description=_ACTIONS)),
    )
    return create_model(
        "JobsYaml",
        __base__=FileModel,
        __doc__="Jobs and settings of kinsta-scheduler (README: jobs.yaml).",
        jobs=(list[job], []),
    )


def _step(name: str, options: type[Options]) -> type[BaseModel]:
    """`{name: options}` for one action: its options model, or nothing (its defaults)."""
    given: Any = options | None
    return create_model(
        f"action_{name}", __config__=ConfigDict(extra="forbid"), options=(given, Field(alias=name))
    )


def _walk(node: Any, change: Callable[[Node], Node]) -> Any:
    """`change` applied to every schema inside `node`, innermost first."""
    if not isinstance(node, dict):
        return node
    out: Node = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _walk(part, change) for name, part in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_walk(part, change) for part in value]
        elif key in _SCHEMAS:
            out[key] = _walk(value, change)
        else:
            out[key] = value
    return change(out)


def _draft7(node: Node) -> Node:
    """No titles (see _Generator: models' names are no help either); a `$ref` alone, the
    keywords beside it kept by an allOf; no default beside a `$ref` (a section's defaults are
    its keys', written as the model holds them once validated: 0.5 for "50%")."""
    node = {key: value for key, value in node.items() if key != "title"}
    if "$ref" in node:
        node.pop("default", None)
    if "$ref" in node and len(node) > 1:
        return {"allOf": [{"$ref": node.pop("$ref")}], **node}
    return node


def _interpolable(node: Node) -> Node:
    """`node`, also accepting a ${VAR} reference where it accepts no string that holds one
    (a number, a flag, a choice, a pattern); nested alternatives flattened into one list."""
    if "anyOf" in node:
        parts: list[Node] = []
        lifted: Node = {}
        for part in node["anyOf"]:
            nested = part.get("anyOf") if set(part) <= {"anyOf", *_META} else None
            if nested is not None:
                lifted.update({k: v for k, v in part.items() if k in _META})
            for option in nested or [part]:
                if option not in parts:
                    parts.append(option)
        return {**lifted, **node, "anyOf": parts}
    if _takes_no_reference(node):
        meta = {key: node[key] for key in _META if key in node}
        rest = {key: value for key, value in node.items() if key not in meta}
        return {"anyOf": [rest, INTERPOLATED], **meta}
    return node


def _takes_no_reference(node: Node) -> bool:
    kind = node.get("type")
    if "enum" in node or "const" in node or kind in ("integer", "number", "boolean"):
        return True
    return kind == "string" and any(rule in node for rule in _STRING_RULES)
