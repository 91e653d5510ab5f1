"""Checks requests (and the sandbox's own responses) against Kinsta's OpenAPI document.

The document is the official v1.87.0 copy shipped as package data (sha256 270d5b2f...1f95eaf).
A request is checked for: a documented method and path; the bearer header; every required path
and query parameter present and of its schema's type; no undocumented query parameters; a JSON
body exactly when one is documented, valid against its schema (JSON Schema 2020-12, as OpenAPI
3.1 defines). Violations are plain strings; the server counts them and shows them.

A response is checked for a documented status and a body valid against that status's schema.
The few statuses Kinsta answers that the spec does not list are allowed one by one, with the
reason, in UNDOCUMENTED_STATUSES; their bodies are checked against the spec's generic error
schema for that status (StatusResponseSchema404...).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:kinsta-openapi"
_METHODS = ("get", "post", "put", "patch", "delete")

_TOOLS_404 = frozenset({404})
# operationId -> statuses Kinsta answers there though the spec does not list them. Keep this
# list short and say why for each: everything else undocumented stays a response violation.
UNDOCUMENTED_STATUSES: dict[str, frozenset[int]] = {
    # The tool, edge and CDN endpoints take the environment in the body and document only
    # 202/200, 401 and 500; for an environment id Kinsta does not know (or a CDN or edge cache
    # the environment does not have) Kinsta answers 404 with the usual not-found body, as the
    # environment endpoints do. A 500 there would read as "try again" to any client.
    "clearSiteCache": _TOOLS_404,
    "restartPhpEngine": _TOOLS_404,
    "clearSiteEdgeCache": _TOOLS_404,
    "clearSiteCDNCache": _TOOLS_404,
    "getDeniedIPs": _TOOLS_404,
    "updateDeniedIPs": _TOOLS_404,
    # The same 404, and 400 for a PHP version Kinsta does not offer (rules.py): the schema only
    # says "string", the check is Kinsta's.
    "modifyPhpVersion": frozenset({400, 404}),
}


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    regex: re.Pattern[str]
    operation: dict[str, Any] = field(hash=False, compare=False)

    @property
    def name(self) -> str:
        return str(self.operation.get("operationId", f"{self.method} {self.template}"))


@dataclass(frozen=True)
class Match:
    route: Route
    path_params: dict[str, str]


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(f"^{pattern}$")


def _specificity(template: str) -> tuple[int, int]:
    segments = template.strip("/").split("/")
    literal = sum(1 for s in segments if not s.startswith("{"))
    return (-literal, -len(segments))


class Spec:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._registry: Registry[Any] = Registry().with_resource(
            SPEC_URI, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        routes = []
        for template in sorted(document["paths"], key=_specificity):
            for method, operation in document["paths"][template].items():
                if method in _METHODS:
                    routes.append(Route(method.upper(), template, _compile(template), operation))
        self.routes = tuple(routes)
        self._validators: dict[str, Draft202012Validator] = {}

    def match(self, method: str, path: str) -> Match | None:
        for route in self.routes:
            if route.method == method and (found := route.regex.match(path)):
                return Match(route, found.groupdict())
        return None

    def _validator(self, pointer: str) -> Draft202012Validator:
        if pointer not in self._validators:
            schema = {"$ref": f"{SPEC_URI}#/{pointer}"}
            self._validators[pointer] = Draft202012Validator(schema, registry=self._registry)
        return self._validators[pointer]

    def _schema_errors(self, pointer: str, instance: Any, label: str) -> list[str]:
        errors = sorted(self._validator(pointer).iter_errors(instance), key=lambda e: list(e.path))
        out = []
        for error in errors[:5]:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            out.append(f"{label} {where}: {error.message}")
        return out

    def check_request(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: bytes | None,
        headers: dict[str, str],
    ) -> tuple[Match | None, list[str]]:
        found = self.match(method, path)
        if found is None:
            return None, [f"{method} {path}: no such operation in the spec"]
        route = found.route
        problems = [f"{route.name}: {p}" for p in self._check(found, query, body, headers)]
        return found, problems

    def _check(
        self, found: Match, query: dict[str, list[str]], body: bytes | None, headers: dict[str, str]
    ) -> list[str]:
        route = found.route
        problems: list[str] = []
        if "security" in route.operation and not headers.get("authorization", "").startswith(
            "Bearer "
        ):
            problems.append("missing 'Authorization: Bearer <key>' header")
        base = _pointer("paths", route.template, route.method.lower())
        documented = set()
        for index, param in enumerate(route.operation.get("parameters", [])):
            where, name = param["in"], param["name"]
            if where == "path":
                value: str | None = found.path_params.get(name)
            elif where == "query":
                documented.add(name)
                values = query.get(name)
                value = values[-1] if values else None
            else:
                continue
            if value is None:
                if param.get("required"):
                    problems.append(f"required {where} parameter '{name}' is missing")
                continue
            pointer = f"{base}/parameters/{index}/schema"
            problems += self._schema_errors(pointer, _coerce(value, param.get("schema", {})), name)
        for name in query:
            if name not in documented:
                problems.append(f"query parameter '{name}' is not documented")
        problems += self._check_body(route, base, body, headers)
        return problems

    def _check_body(
        self, route: Route, base: str, body: bytes | None, headers: dict[str, str]
    ) -> list[str]:
        spec_body = route.operation.get("requestBody")
        if spec_body is None:
            return ["a body was sent but none is documented"] if body else []
        if not body:
            return ["the documented request body is missing"] if spec_body.get("required") else []
        if not headers.get("content-type", "").startswith("application/json"):
            return ["the body is not sent as application/json"]
        try:
            instance = json.loads(body)
        except ValueError:
            return ["the body is not valid JSON"]
        pointer = f"{base}/requestBody/content/{_pointer('application/json')}/schema"
        return self._schema_errors(pointer, instance, "body")

    def documented_statuses(self, route: Route) -> frozenset[int]:
        """The statuses the spec lists for the operation, and those Kinsta answers beyond them
        (UNDOCUMENTED_STATUSES): what the sandbox may answer there."""
        listed = {int(code) for code in route.operation.get("responses", {}) if code.isdigit()}
        return frozenset(listed) | UNDOCUMENTED_STATUSES.get(route.name, frozenset())

    def example_response(self, route: Route) -> tuple[int, Any]:
        """The first documented 2xx answer, filled from the schema's examples: how the sandbox
        answers operations it does not model (the deprecated hosting endpoints)."""
        responses = route.operation.get("responses", {})
        status = min(int(c) for c in responses if c.isdigit() and c.startswith("2"))
        content = responses[str(status)].get("content", {})
        if not content:
            return status, None
        schema = next(iter(content.values())).get("schema", {})
        return status, self._example(schema, 0)

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.document
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
        return schema

    def _example(self, schema: dict[str, Any], depth: int) -> Any:  # noqa: PLR0911 - one per kind
        schema = self._resolve(schema)
        if "example" in schema and schema.get("type") != "object":
            return schema["example"]
        if "enum" in schema:
            return schema["enum"][0]
        for combinator in ("allOf", "oneOf", "anyOf"):
            if combinator in schema:
                parts = [self._example(s, depth + 1) for s in schema[combinator]]
                if combinator == "allOf" and all(isinstance(p, dict) for p in parts):
                    return {k: v for p in parts for k, v in p.items()}
                return parts[0]
        kind = schema.get("type", "object" if "properties" in schema else "string")
        kind = next((k for k in kind if k != "null"), "null") if isinstance(kind, list) else kind
        if kind == "object":
            if depth > 8:
                return {}
            return {k: self._example(v, depth + 1) for k, v in schema.get("properties", {}).items()}
        if kind == "array":
            return [self._example(schema.get("items", {}), depth + 1)] if depth <= 8 else []
        return {"string": "example", "number": 0, "integer": 0, "boolean": False}.get(kind)

    def check_response(self, found: Match, status: int, body: Any) -> list[str]:
        route = found.route
        responses = route.operation.get("responses", {})
        if str(status) not in responses:
            return self._check_undocumented(route, status, body)
        content = responses[str(status)].get("content", {})
        if not content:
            return []
        media = next(iter(content))
        base = _pointer("paths", route.template, route.method.lower())
        pointer = f"{base}/responses/{status}/content/{_pointer(media)}/schema"
        return [f"{route.name}: {p}" for p in self._schema_errors(pointer, body, "response")]

    def _check_undocumented(self, route: Route, status: int, body: Any) -> list[str]:
        if status not in UNDOCUMENTED_STATUSES.get(route.name, frozenset()):
            return [f"{route.name}: status {status} is not documented"]
        pointer = _pointer("components", "schemas", f"StatusResponseSchema{status}")
        return [f"{route.name}: {p}" for p in self._schema_errors(pointer, body, "response")]


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """Query and path values are text; read them as the schema's type for validation."""
    types = schema.get("type", "string")
    types = types if isinstance(types, list) else [types]
    if "boolean" in types and value in ("true", "false"):
        return value == "true"
    if ("number" in types or "integer" in types) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value) if "." in value else int(value)
    return value


@cache
def load_spec() -> Spec:
    text = resources.files("scheduler.sandbox").joinpath("openapi.json").read_text("utf-8")
    return Spec(json.loads(text))
