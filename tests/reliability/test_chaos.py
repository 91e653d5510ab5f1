"""The short form of the chaos run (benchmarks/chaos.py; `make chaos` runs ten minutes): two
daemons on one PostgreSQL under kill -9, SIGTERM, database outages and 5% API faults, then the
audit of every slot, run, operation and request."""

from __future__ import annotations

import pytest

from benchmarks.chaos import chaos
from tests.reliability.conftest import LONG


@pytest.mark.pg
def test_two_daemons_under_chaos_account_for_every_slot_once(pg_url: str) -> None:
    figures = chaos(
        minutes=5 if LONG else 0.75,
        seed=7,
        fault_rate=0.05,
        outage_max=30 if LONG else 8,
        keep=False,
    )
    assert not figures.problems, "\n".join(figures.problems + figures.lines)
