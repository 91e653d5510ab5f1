"""An environment's backups: listed, taken by hand, restored, removed."""

from __future__ import annotations

from scheduler.sandbox import rules
from scheduler.sandbox.handlers.base import (
    Handler,
    Request,
    Response,
    accepted,
    missing,
    refused,
)
from scheduler.sandbox.state import Fleet


def get_backups(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    if env is None:
        return missing(request)
    with fleet.lock:
        backups = [b.to_json() for b in env.backups]
    return 200, {"environment": {"display_name": env.display_name, "backups": backups}}


def get_downloadable_backups(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    if env is None:
        return missing(request)
    return 200, {"environment": {"display_name": env.display_name, "downloadable_backups": []}}


def add_manual_backup(fleet: Fleet, request: Request) -> Response:
    env = fleet.environment(request.path_params["env_id"])
    if env is None:
        return missing(request)
    tag = str(request.json().get("tag", ""))
    claim = f"manual-backup:{env.id}"
    with fleet.lock:  # count the ones kept and the ones being taken, and take one, at once
        taken = sum(1 for b in env.backups if b.type == "manual") + fleet.claimed(claim)
        if problem := rules.too_many_backups(taken):
            return refused(problem)
        operation = fleet.start_operation(
            "backups:add-manual", env.id, env, lambda: fleet.add_manual_backup(env, tag), claim
        )
    return accepted(operation.operation_id, "Adding a manual backup to environment in progress")


def restore_backup(fleet: Fleet, request: Request) -> Response:
    target = fleet.environment(request.path_params["target_env_id"])
    body = request.json()
    found = fleet.backup(int(body.get("backup_id", 0)))
    users = {u["id"] for u in fleet.users}
    if target is None or found is None or body.get("notified_user_id") not in users:
        return missing(request)
    _, backup = found
    fleet.add_system_backup(target, f"Before restoring backup {backup.id}")
    operation = fleet.start_operation(
        "backups:restore", target.id, target, lambda: target.restore(backup)
    )
    return accepted(operation.operation_id, "Restoring a backup to environment in progress")


def remove_backup(fleet: Fleet, request: Request) -> Response:
    backup_id = request.path_params["backup_id"]
    found = fleet.backup(int(backup_id)) if backup_id.isdigit() else None
    if found is None:
        return missing(request)
    env, backup = found
    operation = fleet.start_operation(
        "backups:remove", env.id, env, lambda: env.backups.remove(backup)
    )
    return accepted(
        operation.operation_id,
        "Removing a backup in progress. Use the operation_id to check the status.",
    )


HANDLERS: dict[str, Handler] = {
    "getBackups": get_backups,
    "getDownloadableBackups": get_downloadable_backups,
    "addManualBackup": add_manual_backup,
    "restoreBackup": restore_backup,
    "removeBackup": remove_backup,
}
