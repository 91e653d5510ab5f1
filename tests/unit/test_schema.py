"""The JSON Schema of jobs.yaml: generated from the models, it accepts every file the loader
accepts (the shorthand forms too) and rejects what it can see is wrong."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from pydantic import BaseModel, WithJsonSchema

from scheduler.actions import Options, registry
from scheduler.config import parse, shape
from scheduler.config.schema import DIALECT, json_schema
from scheduler.config.yaml_source import load_yaml
from scheduler.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json_schema()
VALIDATOR = Draft7Validator(SCHEMA)
ENV = {
    "RATE": "90",
    "HOOK": "https://hooks.example/x",
    "PHP": "8.3",
    "PW": "long-enough-pw",
    # what the README's examples name: the mail server and Slack's signing secret
    "KINSTA_SCHEDULER_SMTP_HOST": "smtp.example.com",
    "KINSTA_SCHEDULER_SMTP_FROM": "scheduler@example.com",
    "SLACK_SIGNING_SECRET": "a-signing-secret-from-slack",
}


def as_read(text: str) -> Any:
    """The document as the loader reads it (YAML 1.1, `on:` a key, no timestamps)."""
    located, _ = load_yaml(text, "jobs.yaml")
    return located.data


def loader_accepts(text: str) -> bool:
    try:
        parse(text, "jobs.yaml", ENV)
    except ConfigError:
        return False
    return True


def schema_errors(text: str) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(as_read(text))]


def example_files() -> list[Path]:
    return [ROOT / "jobs.yaml", *sorted((ROOT / "examples").glob("**/*.y*ml"))]


def test_the_schema_is_a_draft_07_schema_editors_read() -> None:
    assert SCHEMA["$schema"] == DIALECT
    Draft7Validator.check_schema(SCHEMA)
    text = json.dumps(SCHEMA)
    assert "$defs" not in text and '"title": "Per Minute"' not in text


def test_the_shipped_schema_is_the_generated_one() -> None:
    shipped = json.loads((ROOT / "jobs.schema.json").read_text())
    assert shipped == SCHEMA, "regenerate it: kinsta-scheduler schema > jobs.schema.json"


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_the_example_files_are_valid_and_name_the_schema(path: Path) -> None:
    text = path.read_text()
    assert loader_accepts(text)
    assert schema_errors(text) == []
    modeline = "# yaml-language-server: $schema=./jobs.schema.json"
    assert modeline in text.splitlines()[:3]


def readme_examples() -> list[str]:
    """The README's jobs.yaml examples, each made a whole file."""
    readme = (ROOT / "README.md").read_text()
    found = []
    for block in re.findall(r"```yaml\n(.*?)```", readme, re.S):
        text = textwrap.dedent(block)
        if text.startswith("- "):  # a job, shown as it stands in jobs:
            text = "jobs:\n" + textwrap.indent(text, "  ")
        if text.startswith("verify:"):  # a safe update's options
            text = (
                "jobs:\n  - id: readme\n    actions:\n      - update_plugins:\n"
                + textwrap.indent(f"safe: true\n{text}", " " * 10)
            )
        if not re.search(r"^version:", text, re.M):
            text = "version: 1\n" + text
        found.append(text.replace("heartbeat_url: ...", "heartbeat_url: https://hc.example/x"))
    return found


@pytest.mark.parametrize("text", readme_examples(), ids=lambda t: t.splitlines()[1][:30])
def test_the_readmes_examples_are_valid_for_both(text: str) -> None:
    env = {
        **ENV,
        **dict.fromkeys(["KINSTA_API_KEY", "KINSTA_COMPANY_ID", "HC_UUID"], "x"),
        **dict.fromkeys(["AGENCY_KINSTA_API_KEY", "CLIENT_B_KINSTA_API_KEY"], "key"),
        "SLACK_WEBHOOK_URL": "https://hooks.example/T/B",
    }
    parse(text, "README.md", env)
    assert schema_errors(text) == []


def _models() -> dict[str, type[BaseModel]]:
    """Every model of jobs.yaml by its name in the schema's definitions."""
    found = {
        name.lstrip("_"): value
        for name, value in vars(shape).items()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == shape.__name__
        and value.model_fields  # not the base of them all
    }
    found.update({model.__name__: model for model in _subclasses(Options)})
    found["Job"] = found.pop("JobModel")
    return found


def _subclasses(model: type[Options]) -> list[type[Options]]:
    """The options models of the package (not those tests define for a throwaway action)."""
    found = [m for sub in model.__subclasses__() for m in (sub, *_subclasses(sub))]
    return [m for m in found if m.__module__.startswith("scheduler.")]


def test_every_key_of_every_model_is_in_the_schema() -> None:
    definitions = SCHEMA["definitions"]
    assert set(SCHEMA["properties"]) == set(shape.FileModel.model_fields)
    models = _models()
    del models["FileModel"]  # the root
    for name, model in models.items():
        keys = {field.alias or key for key, field in model.model_fields.items()}
        assert set(definitions[name].get("properties", {})) == keys, name
        assert definitions[name]["additionalProperties"] is False, name
    for action, definition in registry().items():
        step = definitions[f"action_{action}"]["properties"][action]
        assert {"$ref": f"#/definitions/{definition.options.__name__}"} in step["anyOf"]


def test_descriptions_the_models_hold_are_kept() -> None:
    definitions = SCHEMA["definitions"]
    site = definitions["CreateSiteOptions"]["properties"]
    assert site["admin_password"]["description"] == "use ${VAR}, never the plain value"
    assert "circuit breaker" in definitions["HaltAfterModel"]["description"]
    assert "a duration" in definitions["Job"]["properties"]["timeout"]["description"]
    waves = definitions["RolloutModel"]["properties"]["waves"]["items"]
    assert "percentage" in waves["description"]


# Fields whose "before" validator only narrows what their type's schema says (so the schema
# takes all the loader does), each with the reason; any other field read before validation
# must say what it takes as written (WithJsonSchema), or the schema would refuse what the
# loader accepts ("5x", "50%", compare: true).
NARROWING_ONLY = {
    ("BadRelease", "version"): "str or null; '*' is a str",
    ("BadRelease", "effect"): "a str naming an effect",
    ("Offer", "version"): "str or null, a number refused",
    ("Offer", "installed"): "str or null, a number refused",
    ("RolloutModel", "canary"): "a share, {labels} or {sites}: its type's schema",
    ("RolloutModel", "waves"): "shares: rules across the list",
    ("HaltAfterModel", "rolled_back"): "a share or null",
    ("HaltAfterModel", "failed"): "a share or null",
    ("Job", "catch_up"): "a duration or false",
    ("VerifyOptions", "min_structure_similarity"): "a number; true refused",
}


def test_every_field_read_before_validation_says_what_it_takes() -> None:
    unsaid = []
    for name, model in _models().items():
        for decorator in model.__pydantic_decorators__.field_validators.values():
            if decorator.info.mode != "before":
                continue
            for field in decorator.info.fields:
                metadata = model.model_fields[field].metadata
                said = any(isinstance(m, WithJsonSchema) for m in metadata)
                if not said and (name, field) not in NARROWING_ONLY:
                    unsaid.append(f"{name}.{field}")
    assert unsaid == []


def test_every_default_is_a_value_the_schema_takes() -> None:
    wrong = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, list):
            for index, part in enumerate(node):
                walk(part, f"{path}/{index}")
        if not isinstance(node, dict):
            return
        if "default" in node:
            own = {k: v for k, v in node.items() if k != "default"}
            own["definitions"] = SCHEMA["definitions"]
            if not Draft7Validator(own).is_valid(node["default"]):
                wrong.append(f"{path}: {node['default']!r}")
        for key, part in node.items():
            if key not in ("default", "const", "enum"):
                walk(part, f"{path}/{key}")

    walk(SCHEMA, "")
    assert wrong == []


VALID = {
    "actions-bare-and-with-options": "actions: [clear_cache, {backup: {tag: x}}, {backup: }, {inventory: {}}]",
    "actions-block-form": "actions:\n      - update_plugins:\n          only: minor\n          min_age: 3d\n          verify: {paths: [/], status: 200}\n      - prune_backups: {keep: 3}",
    "durations": "actions: [clear_cache]\n    schedule: {every: 10m, jitter: 90}\n    timeout: 1.5h\n    misfire_grace: 0.5\n    catch_up: false",
    "shares": "actions: [clear_cache]\n    rollout: {canary: 3, waves: ['10%', '50 %'], pause: 10m}\n    halt_after: {rolled_back: 2, failed: '10%'}",
    "canary-labels": "actions: [clear_cache]\n    rollout: {canary: {labels: [internal]}, waves: [2, 5]}",
    "concurrency": "actions: [clear_cache]\n    concurrency: 4\n    on_failure: continue",
    "verify-forms": "actions: [{update_plugins: {safe: true, verify: {compare: true, max_size_change: 50%, max_slowdown: 5x, slowdown_floor: 50ms}}}, {update_themes: {verify: {compare: [title, size], max_slowdown: 2.5}}}]",
    "on-demand": "actions: [{restore_backup: {backup: 123}}, {set_php_version: {version: '${PHP}'}}]\n    schedule: {cron: '0 3 * * 0', timezone: Europe/Amsterdam}\n    allow_scheduled: true",
    "company-level": "actions: [{create_site: {display_name: x, region: us-central1, admin_email: a@b.c, admin_user: u, admin_password: '${PW}'}}]",
    "targets": "actions: [clear_cache]\n    targets: {sites: ['*acme*'], labels: [Gold], exclude: [x], environment: Pre-Production}",
}
TOP = """version: 1
timezone: Europe/Amsterdam
database: sqlite:///x.db
kinsta:
  rate_limits: {per_minute: "${RATE}", window: 60s, ip_key: 10.0.0.1}
  polling: {first_poll: 3s, read_back: 5m}
  timeout: 30
sandbox:
  seeded_updates: false
  bad_releases: [{name: plugin-a, effect: fatal}, {name: b, version: "*", effect: "slow:5"}]
  offers: [{name: plugin-a, version: null}, {name: b, version: "1.0.1", installed: "1.0.0", kind: theme}]
retention: {older_than: 90d}
notify:
  slack: ${HOOK}
  webhooks: ["${HOOK}"]
  on: [failure, halted]
daemon: {shutdown_timeout: 30s, db_retry: 2m}
"""


@pytest.mark.parametrize("job", VALID.values(), ids=VALID.keys())
def test_the_forms_the_loader_accepts_the_schema_accepts(job: str) -> None:
    text = f"{TOP}jobs:\n  - id: j\n    {job}\n"
    assert loader_accepts(text), text
    assert schema_errors(text) == []


INVALID = {
    "unknown-top-key": ("version: 1\nbogus: 1\n", "'bogus' was unexpected"),
    "wrong-version": ("version: 2\n", "2 is not valid"),
    "unknown-section-key": (
        "version: 1\nkinsta: {rate_limit: {}}\n",
        "'rate_limit' was unexpected",
    ),
    "unknown-job-key": (
        "version: 1\njobs: [{id: a, actions: [clear_cache], enabld: false}]\n",
        "'enabld' was unexpected",
    ),
    "no-actions": ("version: 1\njobs: [{id: a}]\n", "'actions' is a required property"),
    "empty-actions": ("version: 1\njobs: [{id: a, actions: []}]\n", "should be non-empty"),
    "unknown-action": (
        "version: 1\njobs: [{id: a, actions: [clear_cach]}]\n",
        "is not valid under any",
    ),
    "unknown-option": (
        "version: 1\njobs: [{id: a, actions: [{backup: {tags: x}}]}]\n",
        "is not valid under any",
    ),
    "two-actions-in-one": (
        "version: 1\njobs: [{id: a, actions: [{backup: {}, clear_cache: {}}]}]\n",
        "is not valid under any",
    ),
    "options-not-a-mapping": (
        "version: 1\njobs: [{id: a, actions: [{clear_cache: []}]}]\n",
        "is not valid under any",
    ),
    "job-id-with-a-space": (
        "version: 1\njobs: [{id: a b, actions: [clear_cache]}]\n",
        "is not valid under any",
    ),
    "duration-in-words": (
        "version: 1\njobs: [{id: a, actions: [clear_cache], timeout: 2 hours}]\n",
        "is not valid under any",
    ),
    "negative-duration": ("version: 1\ndaemon: {heartbeat: -5}\n", "is not valid under any"),
    "share-in-words": (
        "version: 1\njobs: [{id: a, actions: [clear_cache], halt_after: {failed: some}}]\n",
        "is not valid under any",
    ),
    "zero-share": (
        "version: 1\njobs: [{id: a, actions: [clear_cache], rollout: {canary: 0}}]\n",
        "is not valid under any",
    ),
    "concurrency-word": (
        "version: 1\njobs: [{id: a, actions: [clear_cache], concurrency: many}]\n",
        "is not valid under any",
    ),
    "on-failure": (
        "version: 1\njobs: [{id: a, actions: [clear_cache], on_failure: shrug}]\n",
        "is not valid under any",
    ),
    "notify-on": ("version: 1\nnotify: {on: [sometimes]}\n", "is not valid under any"),
    "number-as-version": (
        "version: 1\njobs: [{id: a, actions: [{set_php_version: {version: 8.3}}]}]\n",
        "is not valid under any",
    ),
    "option-range": (
        "version: 1\njobs: [{id: a, actions: [{fetch_logs: {lines: 0}}]}]\n",
        "is not valid under any",
    ),
}


@pytest.mark.parametrize(("text", "words"), INVALID.values(), ids=INVALID.keys())
def test_what_the_schema_can_see_is_wrong_both_reject(text: str, words: str) -> None:
    assert not loader_accepts(text)
    errors = schema_errors(text)
    assert any(words in error for error in errors), errors


# Documents assembled from the forms each key takes (shorthands, references, odd spacing),
# now and then a wrong one: whatever the loader accepts, the schema accepts. (The converse
# cannot hold: rules across values, such as waves that must grow, are the loader's.)
def pool(*values: Any, wrong: tuple[Any, ...] = ()) -> st.SearchStrategy[Any]:
    """One of `values`, or one in twenty times one of `wrong`."""
    right = st.sampled_from(values)
    return st.integers(0, 19).flatmap(
        lambda n: st.sampled_from(wrong) if n == 0 and wrong else right
    )


DURATIONS = pool(
    "30s", "10m", "1.5h", "3d", "1w", "500ms", " 2 h ", 45, 2.5, "${RATE}", wrong=("soon", -1, True)
)
SHARES = pool(3, "5%", "100%", " 10 % ", "${RATE}%", wrong=(0, "0%", "five", 2.5))
ACTIONS = pool(
    "clear_cache",
    "inventory",
    "${X:-restart_php}",
    {"backup": None},
    {"backup": {"tag": "x", "find_id": True}},
    {"prune_backups": {"keep": 3}},
    {
        "update_plugins": {
            "only": "patch",
            "min_age": "3d",
            "safe": True,
            "verify": {"paths": ["/"], "contains": "</html>"},
        }
    },
    {"update_themes": {"include": ["a*"], "exclude": []}},
    {
        "update_plugins": {
            "verify": {"compare": True, "max_size_change": "25%", "max_slowdown": "3x"}
        }
    },
    {
        "update_themes": {
            "verify": {"compare": ["title"], "max_slowdown": 2, "slowdown_floor": "${RATE}"}
        }
    },
    {"fetch_logs": {"file": "access", "lines": "${RATE}"}},
    {"clear_cache": {}},
    {"set_php_version": {"version": "8.3"}},
    wrong=({"bogus": {}}, {"prune_backups": {}}, {"fetch_logs": {"lines": 0}}),
)
JOB_VALUES = {
    "schedule": pool(
        None,
        {"every": "6h"},
        {"every": 90, "jitter": "10s"},
        {"cron": "30 2 * * *", "jitter": "5m"},
        {"cron": "0 3 * * 0", "timezone": "Europe/Amsterdam"},
        wrong=({"cron": "x"},),
    ),
    "targets": pool(
        {"environment": "staging"},
        {"sites": ["a*"], "labels": ["Gold"], "exclude": ["b"]},
        {"environment": "${X:-all}"},
        wrong=({"sites": "a"},),
    ),
    "concurrency": pool("auto", 1, 512, wrong=(513, 0, "lots")),
    "on_failure": pool("stop", "continue", "${X:-stop}", wrong=("halt",)),
    "misfire_grace": DURATIONS,
    "timeout": DURATIONS,
    "catch_up": st.one_of(DURATIONS, st.just(False)),
    "allow_scheduled": pool(True, False, "${X:-true}"),
    "sandbox_only": pool(True, False),
    "company": pool("default"),
    "rollout": st.fixed_dictionaries(
        {},
        optional={
            "canary": st.one_of(SHARES, pool({"labels": ["internal"]}, {"sites": ["x*"]})),
            "waves": st.lists(SHARES, min_size=1, max_size=2),
            "pause": DURATIONS,
        },
    ),
    "halt_after": st.fixed_dictionaries({}, optional={"rolled_back": SHARES, "failed": SHARES}),
    "heartbeat_url": pool("https://hc.example/x", "${HOOK}", wrong=("nope",)),
}
JOBS = st.fixed_dictionaries(
    {"id": pool("a", "nightly.1", "${X:-b}"), "actions": st.lists(ACTIONS, min_size=1, max_size=3)},
    optional=JOB_VALUES,
)
TOPS = st.fixed_dictionaries(
    {"version": pool(1)},
    optional={
        "timezone": pool("UTC", "Europe/Amsterdam", "${X:-UTC}"),
        "kinsta": pool({"timeout": "30s"}, {"rate_limits": {"per_minute": "${RATE}", "window": "1m"}},
                       {"polling": {"read_back": None, "first_poll": 0.5}}, {"api_key": "${X:-k}"}, wrong=({"polling": {"deadline": 0}},)),
        "retention": st.builds(lambda d: {"older_than": d, "keep_last": 3}, pool("90d", "1d", "${X:-30d}", 86400, wrong=("6m",))),
        "daemon": st.builds(lambda d: {"heartbeat": d}, DURATIONS),
        "notify": pool({"on": ["failure"]}, {"slack": ["${HOOK}"], "webhooks": []}, {"slack": "${HOOK}", "heartbeat_url": None},
                       wrong=({"on": "failure"},)),
        "sandbox": pool({"sites": 3, "time_scale": 0.1}, {"offers": [{"name": "a", "version": None}]},
                        {"bad_releases": [{"name": "a", "version": "*", "effect": "blank"}]}),
    },
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TOPS, st.lists(JOBS, max_size=3, unique_by=lambda job: str(job["id"])))
def test_the_schema_never_rejects_what_the_loader_accepts(
    top: dict[str, Any], jobs: list[Any]
) -> None:
    document = {**top, "jobs": jobs}
    text = json.dumps(document)  # JSON is YAML
    if loader_accepts(text):
        assert schema_errors(text) == [], text


def test_a_reference_is_accepted_wherever_a_scalar_goes() -> None:
    text = json.dumps(SCHEMA)
    assert re.search(r'"pattern": "\\\\\$\\\\\{"', text)
    concurrency = SCHEMA["definitions"]["Job"]["properties"]["concurrency"]
    assert {"const": "auto"} in concurrency["anyOf"]
    assert any(part.get("pattern") == r"\$\{" for part in concurrency["anyOf"])
