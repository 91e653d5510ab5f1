"""The fault suite reuses the acceptance fixtures: the real CLI and a sandbox in subprocesses.

CI runs its fast form. `python benchmarks/faults.py` runs the long form (LONG below): a 30 s
database outage, more triggers under injected faults, thousands of fuzzed files."""

import os

from tests.acceptance.conftest import cli, daemons, quick_sandbox  # noqa: F401

LONG = os.environ.get("KINSTA_SCHEDULER_LONG_FAULTS") == "1"
