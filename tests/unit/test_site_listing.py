"""Runs that start together share one site listing (scheduler/run/listing.py)."""

from __future__ import annotations

import pytest

from scheduler.kinsta.models import Site
from scheduler.run.listing import FRESH_S, SiteListing
from tests.conftest import FakeClock


def test_runs_that_start_together_share_one_listing_and_later_ones_ask_again() -> None:
    clock, asked = FakeClock(), []

    def fetch() -> list[Site]:
        asked.append(clock.monotonic())
        return []

    sites = SiteListing(fetch, clock)
    sites()
    clock.advance(FRESH_S - 1)
    sites()
    assert len(asked) == 1
    clock.advance(2)
    sites()
    assert len(asked) == 2


def test_a_failed_listing_is_asked_again_by_the_next_run() -> None:
    clock, calls = FakeClock(), []

    def fetch() -> list[Site]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the API failed")
        return []

    sites = SiteListing(fetch, clock)
    with pytest.raises(RuntimeError):
        sites()
    assert sites() == [] and len(calls) == 2
