"""Run as a process by test_governor.py: send N requests through a governor whose ledger is
the given database, as one of several processes sharing one key."""

from __future__ import annotations

import sys

from scheduler.clock import SystemClock
from scheduler.domain import RateLimits, Secret
from scheduler.history import make_engine
from scheduler.history.ledger import SqlLedger
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.kinsta.governor import key_fingerprint
from scheduler.sandbox import DEFAULT_API_KEY


def main(api_url: str, database_url: str, count: int, per_window: int, window_s: float) -> None:
    clock = SystemClock()
    engine = make_engine(database_url)
    governor = RateGovernor(
        RateLimits(per_minute=per_window, window_s=window_s),
        clock,
        ledger=SqlLedger(engine),
        scope=key_fingerprint(DEFAULT_API_KEY),
    )
    with KinstaClient(api_url, Secret(DEFAULT_API_KEY), governor, clock) as client:
        for _ in range(count):
            client.validate()
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
