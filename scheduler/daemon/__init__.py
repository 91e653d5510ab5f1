"""The daemon: fires jobs.yaml's jobs on their schedules, exactly once per slot across processes
and restarts. daemon.py orchestrates its parts; APScheduler is used in wiring.py only.

- Fire times come from schedules.py and slots.py through SlotTrigger. The executor hands each
  firing the fire times it stands for; each maps to its un-jittered slot, and the slot is claimed
  (job, slot) in the history database before anything is done, so a slot runs once across
  processes and restarts. Every slot of a firing is accounted for: the newest one within
  misfire_grace runs, every other one gets a `missed` row.
- jobs.yaml is re-read when its content changes (checked every RELOAD_CHECK_S) or on SIGHUP. An
  invalid file keeps the last good schedule. Only changed jobs are rescheduled.
- On start, and every RECOVERY_EVERY_S, runs whose process is gone are recovered (recovery.py);
  slots missed while no daemon ran are caught up (one run, coalesced, when within the job's
  `catch_up` window) or recorded `missed`.
- A slot whose job is still running (here or in another process) is recorded `skipped`.
- Skipped and missed rows are queued and written by their own thread (never the scheduler's),
  kept while the database is unreachable, and a `missed` row waits until the slot's
  misfire_grace has passed, so a live replica can still run it.
- The daemon's own duties (recovery, catch-up, housekeeping, writing queued rows) have their own
  threads and always run, however late.
- SIGTERM/SIGINT: stop firing, start no new task, let running tasks finish within
  `daemon.shutdown_timeout`, then stop polling; exit 0. A second signal exits at once.
"""

from scheduler.daemon.daemon import Collaborators, Daemon
from scheduler.daemon.outbox import Verdict
from scheduler.daemon.reload import file_digest, load_for_daemon
from scheduler.daemon.wiring import SlotExecutor, SlotTrigger

__all__ = [
    "Collaborators",
    "Daemon",
    "SlotExecutor",
    "SlotTrigger",
    "Verdict",
    "file_digest",
    "load_for_daemon",
]
