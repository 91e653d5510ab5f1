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
        "scheduler.run",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    "scheduler.ratelimit": (
        "scheduler.kinsta",
        "scheduler.history",
        "scheduler.run",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    "scheduler.schedules": (
        "scheduler.kinsta",
        "scheduler.history",
        "scheduler.run",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    "scheduler.ports": (
        "scheduler.config",
        "scheduler.kinsta",
        "scheduler.history",
        "scheduler.actions",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    "scheduler.durations": (
        "scheduler.config",
        "scheduler.kinsta",
        "scheduler.history",
        "scheduler.actions",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    # The in-memory twin needs no database: SQLAlchemy stays in the SQL modules beside it.
    "scheduler.history.memory": ("scheduler.history.sql", "sqlalchemy"),
    "scheduler.history.store": ("scheduler.history.sql", "sqlalchemy"),
    "scheduler.history.rows": ("scheduler.history.sql", "sqlalchemy"),
    "scheduler.config": (
        "scheduler.kinsta",
        "scheduler.history",
        "scheduler.run",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    "scheduler.kinsta": (
        "scheduler.history",
        "scheduler.run",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
        "scheduler.actions",
    ),
    "scheduler.actions": (
        "scheduler.history",
        "scheduler.run",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    "scheduler.history": (
        "scheduler.kinsta",
        "scheduler.run",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
        "scheduler.actions",
    ),
    "scheduler.slots": (
        "scheduler.kinsta",
        "scheduler.history",
        "scheduler.run",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    # the runner's parts never reach back to what composes them
    "scheduler.run": (
        "scheduler.runner",
        "scheduler.recovery",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    "scheduler.runner": ("scheduler.daemon", "scheduler.cli"),
    "scheduler.daemon": ("scheduler.cli",),
    # the daemon's parts: pure ones and the APScheduler wiring never reach for the rest
    "scheduler.daemon.jobs": (
        "scheduler.history",
        "scheduler.run",
        "scheduler.runner",
        "scheduler.kinsta",
        "scheduler.daemon.",
    ),
    "scheduler.daemon.wiring": (
        "scheduler.history",
        "scheduler.run",
        "scheduler.runner",
        "scheduler.kinsta",
        "scheduler.daemon.",
    ),
    "scheduler.daemon.health": (
        "scheduler.run",
        "scheduler.runner",
        "scheduler.kinsta",
        "scheduler.daemon.",
    ),
    "scheduler.daemon.outbox": (
        "scheduler.run",
        "scheduler.runner",
        "scheduler.kinsta",
        "scheduler.daemon.",
    ),
    "scheduler.daemon.reload": (
        "scheduler.history",
        "scheduler.run",
        "scheduler.runner",
        "scheduler.kinsta",
        "scheduler.daemon.",
    ),
    "scheduler.daemon.runs": ("scheduler.daemon.daemon", "scheduler.daemon.wiring"),
    "scheduler.daemon.backlog": (
        "scheduler.run",
        "scheduler.runner",
        "scheduler.kinsta",
        "scheduler.daemon.daemon",
        "scheduler.daemon.wiring",
        "scheduler.daemon.runs",
    ),
    "scheduler.recovery": ("scheduler.daemon", "scheduler.cli"),
    "scheduler.notify": (
        "scheduler.history",
        "scheduler.run",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
        "scheduler.bootstrap",
    ),
    "scheduler.notify.policy": ("scheduler.events", "scheduler.notify.dispatch"),  # pure
    "scheduler.notify.channels": ("scheduler.events", "scheduler.notify.dispatch"),  # pure
    "scheduler.metrics": (
        "scheduler.run",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
        "scheduler.bootstrap",
    ),
    # the bus: publishers and subscribers import it, never the other way round
    "scheduler.events": (
        "scheduler.kinsta",
        "scheduler.history",
        "scheduler.run",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
        "scheduler.notify",
        "scheduler.metrics",
        "scheduler.eventlog",
        "scheduler.progress",
        "scheduler.bootstrap",
    ),
    "scheduler.eventlog": (
        "scheduler.history",
        "scheduler.run",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
        "scheduler.bootstrap",
    ),
    "scheduler.progress": (
        "scheduler.run",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
    ),
    # the composition root: everything but the command line
    "scheduler.bootstrap": ("scheduler.cli",),
    "scheduler.sandbox": (
        "scheduler.history",
        "scheduler.run",
        "scheduler.runner",
        "scheduler.daemon",
        "scheduler.cli",
        "scheduler.kinsta",
    ),
}
# third-party library -> the only places that may import it
CONFINED = {
    "httpx": ("scheduler.kinsta", "scheduler.notify.dispatch"),  # Kinsta's API; webhooks
    "prometheus_client": ("scheduler.metrics",),
    "sqlalchemy": ("scheduler.history",),
    "alembic": ("scheduler.history",),
    "yaml": ("scheduler.config",),
    "apscheduler": ("scheduler.daemon.wiring", "scheduler.schedules"),
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
