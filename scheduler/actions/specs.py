"""How an action is declared: once, beside its function, with its typed options model, its scope
and the flags the configuration, the runner, recovery and `plan` read. Pure: no I/O.

    CLEAR_CACHE = define("clear_cache", clear_cache, NoOptions, one_operation=True, ...)

`requests` and `operations` (or `costs`, a function of the options) tell `plan` what a task
asks of Kinsta: its calls and reads, and the asynchronous operations it then polls.

`define` checks statically that the function takes the options model it is declared with; the
runner hands each action its options as that model (validated when jobs.yaml was read), never a
mapping read by key."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from scheduler.actions.base import ActionContext, ActionResult
from scheduler.domain import ActionSpec, Target

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Options(BaseModel):
    """The base of every action's options: unknown keys are an error, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoOptions(Options):
    pass


OptionsT = TypeVar("OptionsT", bound=Options)


class Repeat(StrEnum):
    """What "safe to repeat" means for an action: what the runner may run again after a
    transient failure (up to four attempts in all)."""

    # A second run ends in the same state and does no harm (clearing a cache, reading): tried
    # again after any transient failure, even when its request may have reached Kinsta.
    ALWAYS = "always"
    # One change request whose repetition would be felt (restarting PHP twice): tried again
    # only after a failure that proves the request was not made (no connection); never after
    # an uncertain answer.
    IF_NOT_SENT = "if_not_sent"
    # Several steps, or a change that is not repeated without a look (backups, updates,
    # restores, pushes...): one attempt; the next slot tries again.
    NEVER = "never"


class Scope(StrEnum):
    """What an action acts on."""

    ENVIRONMENT = "environment"  # the target environment
    # The target environment and others of its site (pushing staging onto live, adding a
    # staging environment): still run once per target environment.
    SITE = "site"
    # The company: run once per run on a pseudo-target; a job holding one holds nothing else.
    COMPANY = "company"


# An action as the runner calls it: the options as the job holds them (see ActionDef.invoke).
Action = Callable[[ActionContext, Target, object], ActionResult]


@dataclass(frozen=True)
class Cost:
    """What one task of an action typically asks of Kinsta, for `plan`: its requests other
    than polls (the action's call and the reads around it) and its asynchronous operations,
    each of which is then polled until it ends (`plan` adds the polls it expects)."""

    requests: float
    operations: float


@dataclass(frozen=True)
class ActionDef:
    """One action, declared once. Build it with `define`, which checks the pairing of the
    function and its options model."""

    name: str
    run: Callable[[ActionContext, Target, Any], ActionResult]
    options: type[Options] = NoOptions
    scope: Scope = Scope.ENVIRONMENT
    mutating: bool = True  # changes the environment: holds its lock while it runs
    repeat: Repeat = Repeat.NEVER  # what may be run again after a transient failure
    # The action is its one Kinsta operation: after a crash, that operation's outcome is the
    # task's (recovery.py). Actions with reads or steps around the operation are not.
    one_operation: bool = False
    # Changes or creates something on request, not routine maintenance: only in jobs without a
    # schedule (run with `trigger`), or with `allow_scheduled: true`.
    on_demand: bool = False
    # For `plan`, per target: the API requests other than polls (calls and reads) and the
    # asynchronous operations (each polled to its end); `costs` when they depend on the options.
    requests: float = 1.0
    operations: float = 1.0
    costs: Callable[[Any], Cost] | None = None
    # How long until a poll sees it done at Kinsta (about 1.5x the median operation), for
    # `plan` until history knows better.
    typical_s: float = 10.0
    # What is wrong with a job's `targets.environment` for this action (None: nothing).
    targets: Callable[[str], str | None] | None = None

    def environment_problem(self, environment: str) -> str | None:
        """What jobs.yaml validation reports about a job's `targets.environment`."""
        return self.targets(environment) if self.targets is not None else None

    def options_of(self, given: object) -> Options:
        """The options a job holds for this action, as its model (None: the defaults)."""
        if given is None:
            return self.options()
        if not isinstance(given, self.options):
            raise TypeError(f"{self.name} takes {self.options.__name__}, not {type(given)}")
        return given

    def invoke(self, ctx: ActionContext, target: Target, options: object) -> ActionResult:
        return self.run(ctx, target, self.options_of(options))

    def cost(self, options: object = None) -> Cost:
        """What one task with these options (the job's, or None for the defaults) asks of
        Kinsta on the usual path: every step succeeds, no answer is lost."""
        if self.costs is not None:
            return self.costs(self.options_of(options))
        return Cost(self.requests, self.operations)


def define(
    name: str,
    run: Callable[[ActionContext, Target, OptionsT], ActionResult],
    options: type[OptionsT],
    *,
    scope: Scope = Scope.ENVIRONMENT,
    mutating: bool = True,
    repeat: Repeat = Repeat.NEVER,
    one_operation: bool = False,
    on_demand: bool = False,
    requests: float = 1.0,
    operations: float = 1.0,
    costs: Callable[[OptionsT], Cost] | None = None,
    typical_s: float = 10.0,
    targets: Callable[[str], str | None] | None = None,
) -> ActionDef:
    """Declare an action; its function must take the options model given (checked by mypy)."""
    return ActionDef(
        name,
        run,
        options,
        scope=scope,
        mutating=mutating,
        repeat=repeat,
        one_operation=one_operation,
        on_demand=on_demand,
        requests=requests,
        operations=operations,
        costs=costs,
        typical_s=typical_s,
        targets=targets,
    )


class Catalogue(Mapping[str, ActionDef]):
    """Every action by name: what jobs.yaml accepts, the runner runs and `plan` estimates."""

    def __init__(self, actions: Iterable[ActionDef]) -> None:
        self._by_name: dict[str, ActionDef] = {}
        for action in actions:
            self._add(action)

    def _add(self, action: ActionDef) -> None:
        if not _NAME.match(action.name):
            raise ValueError(f"an action's name is lower_snake_case, not {action.name!r}")
        if action.name in self._by_name:
            raise ValueError(f"two actions are named {action.name!r}")
        if not (isinstance(action.options, type) and issubclass(action.options, Options)):
            raise TypeError(f"{action.name}: its options model must subclass Options")
        self._by_name[action.name] = action

    def __getitem__(self, name: str) -> ActionDef:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def step(self, name: str, **options: Any) -> ActionSpec:
        """A job's action built in code (jobs.yaml goes through config): options validated."""
        return ActionSpec(name, self[name].options.model_validate(options))

    @contextmanager
    def registered(self, *actions: ActionDef) -> Iterator[None]:
        """Add actions for the duration of a block (tests; the catalogue is otherwise fixed)."""
        added: list[str] = []
        try:
            for action in actions:
                self._add(action)
                added.append(action.name)
            yield
        finally:
            for name in added:
                del self._by_name[name]


def company_target_name(spec: ActionSpec, default: str) -> str:
    """The name of a company-level action's pseudo-target: what it creates, when it names it."""
    name = getattr(spec.options, "display_name", None)
    return str(name) if name else default
