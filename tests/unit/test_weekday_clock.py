"""`make test-weekdays` moves every process's wall clock to one instant (tests/weekday): the
clocks of processes started at different moments, reading the time at different moments, must
agree as real clocks do, or cross-process checks (the chaos audit) see effects before causes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from time_machine import escape_hatch

WEEKDAY = Path(__file__).resolve().parents[1] / "weekday"
DESTINATION = "2026-12-08T03:00:00+00:00"

# Reads the clock only after a pause: it must still agree with the clock of a process that
# read it at once.
LATE_READER = """
import time
from datetime import UTC, datetime
time.sleep(1.0)
print(datetime.now(UTC).timestamp())
"""


def _real_time() -> float:
    """The real clock, also while this test run travels (`make test-weekdays`)."""
    return escape_hatch.time.time() if escape_hatch.is_travelling() else time.time()


def test_processes_that_read_the_clock_late_agree_with_the_others() -> None:
    env = {**os.environ, "PYTHONPATH": str(WEEKDAY), "TEST_TRAVEL_TO": DESTINATION}
    env["TEST_TRAVEL_FROM"] = repr(_real_time())
    out = subprocess.run(
        [sys.executable, "-c", LATE_READER], env=env, capture_output=True, text=True, check=True
    )
    read_at = float(out.stdout)
    elapsed = _real_time() - float(env["TEST_TRAVEL_FROM"])
    expected = datetime.fromisoformat(DESTINATION).timestamp() + elapsed
    # Read about 1 s after start and about when the child exited: within the child's exit time.
    assert expected - 1.0 <= read_at <= expected + 0.1
    assert read_at >= datetime.fromisoformat(DESTINATION).timestamp() + 0.9
