"""The API key never reaches a log line."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from scheduler import logs


def test_registered_secret_is_masked_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info", json=True)
    logs.register_secret("sk-live-SECRET-1234")
    structlog.get_logger("t").info(
        "sent", header="Bearer sk-live-SECRET-1234", nested={"k": ["sk-live-SECRET-1234"]}
    )
    logging.getLogger("third.party").warning("oops sk-live-SECRET-1234")
    err = capsys.readouterr().err
    assert "sk-live-SECRET-1234" not in err
    lines = [json.loads(line) for line in err.strip().splitlines()]
    assert lines[0]["header"] == "Bearer ***" and lines[0]["nested"] == {"k": ["***"]}
    assert lines[1]["event"] == "oops ***"


def test_log_lines_go_above_the_progress_bar_not_through_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On a terminal, a line logged while trigger's bar is shown is printed by the bar's
    console above it (rich's stderr proxy), not written over the bar."""
    import io

    from rich.console import Console

    from scheduler import progress
    from scheduler.clock import SystemClock
    from scheduler.domain import RateLimits
    from scheduler.events import Bus
    from scheduler.kinsta import RateGovernor

    logs.configure("info", json=False)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    governor = RateGovernor(RateLimits(), SystemClock())
    with progress.shown(Bus(), governor, tty=True, console=console):
        structlog.get_logger("test").warning("run.something_happened", site="shop")
    assert "run.something_happened" in screen.getvalue()
    assert "run.something_happened" not in capsys.readouterr().err
    structlog.get_logger("test").warning("run.after_the_bar")  # back to stderr itself
    assert "run.after_the_bar" in capsys.readouterr().err
