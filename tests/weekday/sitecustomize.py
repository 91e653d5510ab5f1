"""Put on PYTHONPATH by `make test-weekdays`: with TEST_TRAVEL_TO set (an ISO date-time), every
Python process of the test run (pytest, its workers, the CLI and daemons it starts, the sandbox)
sees the wall clock at that instant plus the real time elapsed since the first of them started
(TEST_TRAVEL_FROM, set by that first process and inherited), so their clocks agree with each
other as real ones would. Monotonic clocks are left alone. Used by no other target."""

import os
import time

_destination = os.environ.get("TEST_TRAVEL_TO")
if _destination:
    from datetime import datetime

    import time_machine

    _began = float(os.environ.setdefault("TEST_TRAVEL_FROM", repr(time.time())))
    _now = datetime.fromisoformat(_destination).timestamp() + (time.time() - _began)
    time_machine.travel(_now, tick=True).start()
    # time-machine starts the tick at the first read of the clock, not at start(): a process
    # that first reads it seconds later would lag every other process by those seconds (the
    # sandbox in a pytest worker saw daemons' requests "before" the tasks that sent them).
    time.time()
