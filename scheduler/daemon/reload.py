"""Watching jobs.yaml: re-read when its content changes; an invalid file, a missing one or a
failure half way keeps the last good schedule. Each outcome is logged and recorded as a daemon
event (`config_reloaded`, `config_rejected`, `config_missing`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog

from scheduler import config as config_module
from scheduler.domain import Config
from scheduler.errors import ConfigError

log = structlog.get_logger("scheduler.daemon")

KEPT = "keeping the last good schedule"


def load_for_daemon(
    path: Path, env: Mapping[str, str], database: str | None, sandbox: bool
) -> Callable[[], Config]:
    """How the daemon reads jobs.yaml, at start and at each reload."""

    def load() -> Config:
        return config_module.load(
            path, env, database_override=database, require_api_key=not sandbox, sandbox=sandbox
        )

    return load


def file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


Apply = Callable[[Config], dict[str, list[str]]]  # schedule a new config: what it changed
Restore = Callable[[Config], None]  # put a good config's schedule back


class ConfigWatcher:
    """jobs.yaml's content, and reloads when it changes. `load` reads and validates the file
    (ConfigError when invalid); `event(kind, detail)` records what happened."""

    def __init__(
        self, path: Path, load: Callable[[], Config], event: Callable[[str, str], None]
    ) -> None:
        self.path = path
        self.load = load
        self._event = event
        self._digest = file_digest(path)
        self._missing = False  # jobs.yaml is gone (said once)

    def changed(self) -> bool:
        """Whether the file's content differs from the last one seen (a gone file: no, said
        once)."""
        digest = file_digest(self.path)
        if digest is None:
            if not self._missing:  # say it once, not every check
                self._missing = True
                log.warning("config.missing", path=str(self.path), action=KEPT)
                self._event("config_missing", f"{self.path} is gone; {KEPT}")
            return False
        self._missing = False
        if digest == self._digest:
            return False
        self._digest = digest
        return True

    def reload(self, good: Config, apply: Apply, restore: Restore) -> bool:
        """Load the changed file and apply it; on any error keep `good` (apply checks every
        trigger before it changes anything; a bug half way is undone by `restore`)."""
        if not self.changed():
            return False
        try:
            new = self.load()
            changes = apply(new)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config.invalid", problem=str(problem))
            log.error("config.rejected", path=str(self.path), action=KEPT)
            self._event("config_rejected", "\n".join(str(p) for p in exc.problems))
            return False
        except Exception as exc:  # a bug must not take the daemon (or its schedule) down
            log.exception("config.reload_failed", path=str(self.path), action=KEPT)
            restore(good)
            self._event(
                "config_rejected",
                f"reload failed ({exc.__class__.__name__}: {exc}); kept the last good schedule",
            )
            return False
        log.info("config.reloaded", revision=new.revision, **changes)
        summary = "; ".join(f"{k}: {', '.join(v)}" for k, v in changes.items() if v)
        self._event(
            "config_reloaded", f"revision {new.revision}" + (f"; {summary}" if summary else "")
        )
        return True
