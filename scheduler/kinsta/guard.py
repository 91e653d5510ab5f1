"""The mutation guard: a check the runner sets around a pipeline, called in the sending thread
before every request that changes something at Kinsta (any method but GET). It raises to refuse
the request before it leaves: the run was adopted by another process, the environment's lease
lapsed or was taken, or the process is stopping. Reads are never refused: following an operation
or reading state back changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Guard = Callable[[str, str], None]  # (method, path) -> None, or raise

_GUARD: ContextVar[Guard | None] = ContextVar("kinsta_mutation_guard", default=None)


@contextmanager
def guarded(check: Guard) -> Iterator[None]:
    """Call `check` before every mutating request sent from this thread inside the block."""
    token = _GUARD.set(check)
    try:
        yield
    finally:
        _GUARD.reset(token)


def check_mutation(method: str, path: str) -> None:
    """Called by the session before it sends; raises whatever the guard raises."""
    check = _GUARD.get()
    if check is not None and method.upper() != "GET":
        check(method, path)
