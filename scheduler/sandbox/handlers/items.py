"""WordPress plugins and themes: listed, updated one at a time or in bulk."""

from __future__ import annotations

from scheduler.sandbox.handlers.base import Handler, Request, Response, accepted, missing
from scheduler.sandbox.state import Fleet


def _list_items(kind: str) -> Handler:
    def handle(fleet: Fleet, request: Request) -> Response:
        env = fleet.environment(request.path_params["env_id"])
        if env is None:
            return missing(request)
        with fleet.lock:
            items = getattr(env, kind)
            data = [item.to_json() for item in items.values()]
        key = "wp_plugins" if kind == "plugins" else "wp_themes"
        return 200, {
            "environment": {
                "id": env.id,
                "container_info": {"id": env.container_id, key: {"data": data}},
            }
        }

    return handle


def _update_item(kind: str) -> Handler:
    singular = "plugin" if kind == "plugins" else "theme"

    def handle(fleet: Fleet, request: Request) -> Response:
        env = fleet.environment(request.path_params["env_id"])
        body = request.json()
        items = getattr(env, kind) if env else {}
        if env is None or body.get("name") not in items:
            return missing(request)
        item = items[body["name"]]
        version = str(body["update_version"])

        def effect() -> None:
            if item.version != version:
                item.version = version
                fleet.item_moved(env, kind, item)

        operation = fleet.start_operation(f"wp-{singular}:update", env.id, env, effect)
        return accepted(operation.operation_id, f"Updating WordPress {singular} in progress")

    return handle


def _bulk_update(kind: str) -> Handler:
    singular = "plugin" if kind == "plugins" else "theme"

    def handle(fleet: Fleet, request: Request) -> Response:
        env = fleet.environment(request.path_params["env_id"])
        names = [str(entry.get("name")) for entry in request.json().get(kind, [])]
        items = getattr(env, kind) if env else {}
        if env is None or not names or any(n not in items for n in names):
            return missing(request)

        def effect() -> None:
            for name in names:
                if items[name].version != items[name].latest:
                    items[name].version = items[name].latest
                    fleet.item_moved(env, kind, items[name])

        operation = fleet.start_operation(f"wp-{kind}:bulk-update", env.id, env, effect)
        # Documented as HTTP 200 with a body status of 202 (REFERENCE.md 3.6).
        return 200, {
            "operation_id": operation.operation_id,
            "message": f"Bulk-updating WordPress {singular}s in progress",
            "status": 202,
        }

    return handle


HANDLERS: dict[str, Handler] = {
    "getPlugins": _list_items("plugins"),
    "getThemes": _list_items("themes"),
    "updatePlugin": _update_item("plugins"),
    "updateTheme": _update_item("themes"),
    "bulkUpdatePlugins": _bulk_update("plugins"),
    "bulkUpdateThemes": _bulk_update("themes"),
}
