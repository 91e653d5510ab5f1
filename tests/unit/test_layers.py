"""Imports point one way (house style). Every module of the package has a rank, from the pure
core up to the command line; a module imports only modules of a lower rank, or of its own
group. A new module must be given a rank here (the test names it), so none slips in unchecked.
Each third-party adapter library is imported only in its own layer, and no import cycle exists
between modules (a package's __init__ re-exporting its own submodules aside)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "scheduler"

# (rank, group, module prefixes). The most specific prefix names a module's group.
LAYERS: list[tuple[int, str, tuple[str, ...]]] = [
    # pure: values, the domain model, schedule and rate arithmetic, the ports and the events
    (
        0,
        "core",
        (
            "scheduler.errors",
            "scheduler.secret",
            "scheduler.values",
            "scheduler.clock",
            "scheduler.logs",
            "scheduler.domain",
            "scheduler.rollout",
            "scheduler.blackouts",
            "scheduler.pauses",
            "scheduler.sandbox_values",
            "scheduler.ratelimit",
            "scheduler.schedules",
            "scheduler.slots",
            "scheduler.durations",
            "scheduler.ports",
            "scheduler.events",
            "scheduler.kinsta.models",
            "scheduler.kinsta.guard",
            "scheduler.targets",
            "scheduler.slack.settings",
            "scheduler.slack.signing",
            "scheduler.slack.commands",
            "scheduler.charts",
            "scheduler.reporting",
            "scheduler.branding",
            "scheduler.usage",
            "scheduler.fleetquery",
        ),
    ),
    # adapters, each on its own: Kinsta's API, the history database, the fake Kinsta
    (1, "kinsta", ("scheduler.kinsta",)),
    (1, "history", ("scheduler.history",)),
    (1, "sandbox", ("scheduler.sandbox",)),
    (1, "httpd", ("scheduler.httpd",)),  # the daemon's HTTP server: routes come from above
    # what an action is and does (Kinsta's types for checking only)
    (2, "actions", ("scheduler.actions",)),
    # jobs.yaml and what it plans
    (3, "config", ("scheduler.config", "scheduler.planning")),
    # running jobs; the effects that follow runs (subscribers of the bus)
    (4, "run", ("scheduler.run", "scheduler.runner", "scheduler.recovery")),
    # client reports: assembled from history, rendered as HTML (Jinja2), JSON and PDF
    (4, "reports", ("scheduler.reports",)),
    (
        4,
        "effects",
        ("scheduler.metrics", "scheduler.notify", "scheduler.eventlog", "scheduler.progress"),
    ),
    (5, "daemon", ("scheduler.daemon",)),
    # Slack commands: served on the HTTP server, running jobs through the daemon (a Protocol)
    (5, "slack", ("scheduler.slack",)),
    # the composition root
    (6, "bootstrap", ("scheduler.bootstrap",)),
    # what the CLI and the dashboard show: tables and the JSON documents both give
    (7, "views", ("scheduler.render", "scheduler.views")),
    # the dashboard: pages over the views, registered on the HTTP server by `run`
    (8, "web", ("scheduler.web",)),
    # the command line
    (9, "cli", ("scheduler.cli", "scheduler.__main__")),
]
# third-party library -> the only places that may import it
CONFINED = {
    "httpx": ("scheduler.kinsta", "scheduler.notify.dispatch"),  # Kinsta's API; webhooks
    "smtplib": ("scheduler.notify.mail",),  # e-mail notifications
    "prometheus_client": ("scheduler.metrics",),
    "sqlalchemy": ("scheduler.history",),
    "alembic": ("scheduler.history",),
    "yaml": ("scheduler.config",),
    "apscheduler": ("scheduler.daemon.wiring", "scheduler.schedules"),
    "weasyprint": ("scheduler.reports.pdf",),  # report --format pdf
}
# Modules inside a layer that must stay free of the rest of it.
INNER = {
    # the in-memory twin needs no database
    "scheduler.history.memory": ("scheduler.history.sql", "sqlalchemy"),
    "scheduler.history.store": ("scheduler.history.sql", "sqlalchemy"),
    "scheduler.history.rows": ("scheduler.history.sql", "sqlalchemy"),
    # pure decisions never reach for their wiring
    "scheduler.run.policy": ("scheduler.run.", "scheduler.history", "scheduler.kinsta"),
    "scheduler.daemon.jobs": ("scheduler.daemon.", "scheduler.history", "scheduler.runner"),
    "scheduler.notify.policy": ("scheduler.events", "scheduler.notify.dispatch"),
    "scheduler.notify.channels": ("scheduler.events", "scheduler.notify.dispatch"),
}


def modules() -> dict[str, set[str]]:
    """Every module of the package and the modules it imports (ours resolved to modules:
    `from scheduler import logs` imports scheduler.logs)."""
    paths = {
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in PACKAGE.rglob("*.py")
    }
    found = {}
    for name, path in paths.items():
        imports: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imports.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                inner = [f"{node.module}.{a.name}" for a in node.names]
                named = [m for m in inner if m in paths]
                imports.update(named or [node.module])
        found[name] = imports
    return found


def layer_of(module: str) -> tuple[int, str] | None:
    best: tuple[int, int, str] | None = None
    for rank, group, prefixes in LAYERS:
        for prefix in prefixes:
            inside = module == prefix or module.startswith(prefix + ".")
            if inside and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank, group)
    return None if best is None else (best[1], best[2])


def _names(imported: str, banned: str) -> bool:
    """Whether `imported` is the module `banned` or inside it ("x." bans the package x)."""
    if banned.endswith("."):
        return imported.startswith(banned)
    return imported == banned or imported.startswith(banned + ".")


def test_every_module_has_a_rank() -> None:
    assert [m for m in modules() if m != "scheduler" and layer_of(m) is None] == []


def test_layers_import_downwards_only() -> None:
    bad = []
    for module, imports in modules().items():
        mine = layer_of(module)
        for imported in imports:
            theirs = layer_of(imported) if imported.startswith("scheduler.") else None
            if mine is None or theirs is None:
                continue
            if theirs[0] > mine[0] or (theirs[0] == mine[0] and theirs[1] != mine[1]):
                bad.append(f"{module} ({mine[1]}) imports {imported} ({theirs[1]})")
    assert bad == []


def test_inner_rules() -> None:
    bad = [
        f"{module} imports {imported}"
        for module, imports in modules().items()
        for inner, banned in INNER.items()
        if _names(module, inner)
        for imported in imports
        if any(_names(imported, b) for b in banned) and not _names(imported, inner)
    ]
    assert bad == []


def test_no_import_cycle() -> None:
    graph = modules()
    edges = {
        module: {
            i
            for i in imports
            if i in graph and not (i.startswith(module + ".") and i != module)  # re-exports
        }
        for module, imports in graph.items()
    }
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for nxt in sorted(edges[node]):
            visit(nxt, [*path, node])
        done.add(node)

    for module in sorted(edges):
        visit(module, [])
    assert cycles == []


def test_the_checks_catch_a_violation() -> None:
    assert _names("scheduler.history.store", "scheduler.history")
    assert _names("scheduler.kinsta", "scheduler.")
    assert not _names("scheduler.historyx", "scheduler.history")
    assert layer_of("scheduler.kinsta.models") == (0, "core")
    assert layer_of("scheduler.kinsta.client") == (1, "kinsta")
    assert layer_of("scheduler.new_module") is None  # an unranked module fails the first test


def test_adapter_libraries_stay_in_their_layer() -> None:
    bad = [
        f"{module} imports {imported}"
        for module, imports in modules().items()
        for imported in imports
        for library, allowed in CONFINED.items()
        if imported.split(".")[0] == library and not any(module.startswith(a) for a in allowed)
    ]
    assert bad == []


def test_every_package_ships_in_the_wheel() -> None:
    """pyproject lists the packages a wheel (and the Docker image) holds: a new subpackage left
    out of the list works in a checkout and breaks every install."""
    import tomllib

    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    packages = {
        ".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("__init__.py")
    }
    assert packages - listed == set()
