"""Put on PYTHONPATH by `make test-weekdays`: with TEST_TRAVEL_TO set (an ISO date-time), every
Python process of the test run (pytest, the CLI and daemons it starts, the sandbox) sees the
wall clock start at that instant and tick on, so the suite can be shown to pass on each day of
the week. Monotonic clocks are left alone. Never used outside that target."""

import os

_destination = os.environ.get("TEST_TRAVEL_TO")
if _destination:
    import time_machine

    time_machine.travel(_destination, tick=True).start()
