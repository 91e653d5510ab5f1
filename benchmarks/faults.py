"""The long form of the fault suite (tests/reliability): a 30 s database outage under a running
daemon, ten fleet runs under 5% injected API faults, 3,000 fuzzed jobs.yaml files, kill -9 in a
fleet run, and the canary API key. Prints each test's outcome and duration.

    python benchmarks/faults.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    env = {**os.environ, "KINSTA_SCHEDULER_LONG_FAULTS": "1"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0",
         "tests/reliability"],
        cwd=ROOT,
        env=env,
        check=False,
    )  # fmt: skip
    print(f"long fault suite: exit {done.returncode} in {time.monotonic() - started:.0f}s")
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
