"""The catalogue: every action, one line each. The configuration, the runner, recovery, `plan`
and the README's check read it (through `scheduler.actions.registry()`).

Adding an action touches, file by file:
  1. scheduler/actions/<family>.py (an existing family, or a new module): its options model
     (subclass `Options`, or use `NoOptions`), its function taking that model, and its
     declaration `NEW_ACTION = define("new_action", new_action, NewOptions, scope=...,
     mutating=..., repeat=..., one_operation=..., on_demand=..., requests=..., operations=...,
     typical_s=...)`: `requests` counts its calls and reads, `operations` what it then polls
     (`costs=` a function of the options when they change either).
     Import the Kinsta client's types under TYPE_CHECKING only: the configuration reads this
     catalogue and must not load the HTTP client (tests/unit/test_action_catalogue.py checks).
  2. this file: one line in CATALOGUE below (and the module's import if it is new).
  3. README.md: a row in the action table (or a mention among the on-demand actions); the
     unit test that reads the README fails until it is there.
Nothing else: jobs.yaml validation, on-demand and company-scope rules, the runner's locking and
retries, recovery after a crash and `plan`'s estimates all follow from the declaration.
"""

from __future__ import annotations

from scheduler.actions import (
    backups,
    cache,
    domains,
    environments,
    inventory,
    logs,
    php,
    sites,
    updates,
)
from scheduler.actions.specs import Catalogue

CATALOGUE = Catalogue(
    (
        cache.CLEAR_CACHE,
        cache.CLEAR_EDGE_CACHE,
        cache.CLEAR_CDN_CACHE,
        php.RESTART_PHP,
        php.SET_PHP_VERSION,
        backups.BACKUP,
        backups.PRUNE_BACKUPS,
        updates.UPDATE_PLUGINS,
        updates.UPDATE_THEMES,
        logs.FETCH_LOGS,
        inventory.INVENTORY,
        environments.PUSH_TO_LIVE,
        environments.CREATE_STAGING,
        backups.RESTORE_BACKUP,
        sites.CREATE_SITE,
        sites.CLONE_SITE,
        domains.ADD_DOMAIN,
        domains.REMOVE_DOMAIN,
    )
)
