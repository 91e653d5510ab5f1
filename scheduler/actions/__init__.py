"""Actions: plain functions over the Kinsta client, each declared once (specs.define) beside
its typed options model and listed in catalogue.py. They never touch the database or the
scheduler; whatever they need from the run (waiting on an operation, the history of versions,
recording an inventory, an exclusive hold on another environment) goes through ActionContext,
which the runner implements and records.

A change request that may have reached Kinsta without an answer proving it refused (a timeout
after sending, a 5xx, a 2xx that cannot be read: KinstaError.uncertain) is never sent again
unless the action's `repeat` is ALWAYS. Actions whose effect can be read back send it through
`change`, which then reads the state back until it shows the change (or the polling deadline
passes); for the others the runner fails the task saying its outcome is uncertain."""

from scheduler.actions.base import (
    ActionContext,
    ActionResult,
    change,
    outcome,
    uncertain,
)
from scheduler.actions.specs import (
    Action,
    ActionDef,
    Catalogue,
    Cost,
    NoOptions,
    Options,
    Repeat,
    Scope,
    define,
)

__all__ = [
    "Action",
    "ActionContext",
    "ActionDef",
    "ActionResult",
    "Catalogue",
    "Cost",
    "NoOptions",
    "Options",
    "Repeat",
    "Scope",
    "change",
    "define",
    "outcome",
    "registry",
    "uncertain",
]


def registry() -> Catalogue:
    """The catalogue of every action (scheduler.actions.catalogue)."""
    from scheduler.actions.catalogue import CATALOGUE

    return CATALOGUE
