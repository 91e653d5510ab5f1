"""Imports point one way (house style): lower layers never import higher ones, and each
third-party adapter library is imported only in its own layer."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "scheduler"

# module prefix -> modules of ours it must not import
FORBIDDEN = {
    "scheduler.errors": ("scheduler.",),
    "scheduler.values": ("scheduler.",),
    "scheduler.domain": (
        "scheduler.config",
        "scheduler.kinsta",
        "scheduler.history",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    "scheduler.ratelimit": (
        "scheduler.kinsta",
        "scheduler.history",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    "scheduler.schedules": (
        "scheduler.kinsta",
        "scheduler.history",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    "scheduler.config": (
        "scheduler.kinsta",
        "scheduler.history",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    "scheduler.kinsta": (
        "scheduler.history",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
        "scheduler.actions",
    ),
    "scheduler.actions": (
        "scheduler.history",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    "scheduler.history": (
        "scheduler.kinsta",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
        "scheduler.actions",
    ),
    "scheduler.runner": ("scheduler.daemon", "scheduler.cli"),
    "scheduler.daemon": ("scheduler.cli",),
    "scheduler.recovery": ("scheduler.daemon", "scheduler.cli"),
    "scheduler.notify": ("scheduler.runner", "scheduler.daemon", "scheduler.cli"),
    "scheduler.metrics": ("scheduler.runner", "scheduler.daemon", "scheduler.cli"),
    "scheduler.sandbox": (
        "scheduler.history",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
        "scheduler.kinsta",
    ),
}
# third-party library -> the only places that may import it
CONFINED = {
    "httpx": ("scheduler.kinsta", "scheduler.notify"),  # Kinsta's API; webhooks
    "prometheus_client": ("scheduler.metrics",),
    "sqlalchemy": ("scheduler.history",),
    "alembic": ("scheduler.history",),
    "yaml": ("scheduler.config",),
    "apscheduler": ("scheduler.daemon", "scheduler.schedules"),
}


def modules() -> dict[str, set[str]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(
            ".__init__"
        )
        imports: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imports.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imports.add(node.module)
        found[name] = imports
    return found


def _names(imported: str, banned: str) -> bool:
    """Whether `imported` is the module `banned` or inside it ("scheduler." bans the package)."""
    if banned.endswith("."):
        return imported.startswith(banned)
    return imported == banned or imported.startswith(banned + ".")


def test_layers_import_one_way() -> None:
    bad = [
        f"{module} imports {imported}"
        for module, imports in modules().items()
        for layer, banned in FORBIDDEN.items()
        if module == layer or module.startswith(layer + ".")
        for imported in imports
        if not _names(imported, layer) and any(_names(imported, b) for b in banned)
    ]
    assert bad == []


def test_the_layer_check_catches_a_violation() -> None:
    assert _names("scheduler.history.store", "scheduler.history")
    assert _names("scheduler.kinsta", "scheduler.")
    assert not _names("scheduler.historyx", "scheduler.history")


def test_adapter_libraries_stay_in_their_layer() -> None:
    bad = [
        f"{module} imports {imported}"
        for module, imports in modules().items()
        for imported in imports
        for library, allowed in CONFINED.items()
        if imported.split(".")[0] == library and not any(module.startswith(a) for a in allowed)
    ]
    assert bad == []
