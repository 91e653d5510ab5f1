"""The one exception tree of kinsta-scheduler. Adapters translate foreign exceptions here.

    SchedulerError
    ├── ConfigError            jobs.yaml or the environment is invalid (carries every Problem)
    ├── BadInputError          a CLI value cannot be understood (--since, a RUN_ID, a URL)
    │   └── NotFoundError      an unknown JOB_ID or RUN_ID
    ├── Interrupted            the process is stopping: a wait (rate budget, a poll, a lock)
    │   │                      was cut short; nothing was sent after it
    │   ├── OwnershipLost      another process adopted this run: this one stops writing to it
    │   ├── PollingCancelled   a poll (or a wait for a busy environment) stopped early
    │   └── TaskInterrupted    a task was cut short: it is left as it is (running, with its
    │                          operation id) for recovery to follow
    ├── EnvironmentLockLost    the lease on an environment lapsed or was taken: no more changes
    ├── EnvironmentBusy        an environment stayed locked by someone else until the deadline
    ├── BudgetBusy             a request that may only use idle rate budget found none: not sent
    ├── RunRefused             an on-demand run (a Slack command) was not started: the daemon
    │                          is stopping, the job is still running, or its company has no client
    ├── StoreError             the history database failed or is unreachable
    │   └── SchemaOutOfDateError   the database schema is older than the code
    └── KinstaError            anything that went wrong talking to Kinsta (method, path, message;
        │                          `uncertain`: a change request whose effect is unknown)
        ├── TransportError         the request may not have reached Kinsta (connect, timeout)
        ├── RateLimitedError       Kinsta answered 429 (only the status counts)
        ├── KinstaAPIError         Kinsta answered an error status (status, message)
        │   ├── AuthenticationError    401: missing, wrong or expired key
        │   └── NotFoundAPIError       404: missing, or no permission (Kinsta folds 403 into 404)
        └── ResponseFormatError    a 2xx body that is not JSON or lacks expected fields

Exit codes are decided in one place (cli.main): ConfigError/BadInputError -> 2, a failed run -> 1.
"""

from __future__ import annotations

from dataclasses import dataclass


class SchedulerError(Exception):
    """Root of every error this package raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration, located as precisely as we can."""

    file: str
    line: int | None
    message: str
    job_id: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        parts = [where]
        if self.job_id:
            parts.append(f"job '{self.job_id}'")
        if self.field:
            parts.append(self.field)
        return ": ".join(parts) + f": {self.message}"


class ConfigError(SchedulerError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class BadInputError(SchedulerError):
    """A value given on the command line (or similar) cannot be used."""


class NotFoundError(BadInputError):
    """An id given by the user names nothing."""


class Interrupted(SchedulerError):
    """The process is stopping: a wait for rate budget, an operation poll or a lock was cut
    short. Whatever had been sent before stays as it is, for recovery to follow."""


class OwnershipLost(Interrupted):
    """Another process adopted this run (its heartbeat looked stale there): every write this
    process would make to it is refused (fenced by the run's owner token), and it stops."""


class PollingCancelled(Interrupted):
    """Polling stopped because the process is shutting down; the operation may still run."""

    def __init__(self, polls: int) -> None:
        self.polls = polls
        super().__init__(f"polling stopped after {polls} poll(s)")


class TaskInterrupted(Interrupted):
    """The process is stopping: leave the task as it is (running, with its operation id)."""


class EnvironmentBusy(SchedulerError):
    """The environment stayed locked by someone else until the deadline."""


class BudgetBusy(SchedulerError):
    """A request sent `if_idle` (an early poll) found the rate budget in use: it was not sent."""


class RunRefused(SchedulerError):
    """An on-demand run was not started (nothing was recorded): the message says why."""


class EnvironmentLockLost(SchedulerError):
    """The lease on an environment lapsed (not renewed in time: a paused process, an outage) or
    was taken by another holder: the pipeline must send no further change to it."""


class StoreError(SchedulerError):
    """The history database failed. `transient`: it could not be reached (worth retrying)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class SlotNotClaimedError(StoreError):
    """The database could not record the claim of a slot: the run did not start."""


class SchemaOutOfDateError(StoreError):
    pass


CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})  # the methods that change something


class KinstaError(SchedulerError):
    """`uncertain`: the request changes something, may have reached Kinsta, and no answer proved
    it rejected (a 5xx, a timeout after sending, a 2xx that cannot be read): its effect is
    unknown. Such a request is never sent again blindly (see run/policy.py)."""

    def __init__(
        self, message: str, *, method: str = "", path: str = "", uncertain: bool = False
    ) -> None:
        self.method = method
        self.path = path
        self.kinsta_message = message
        self.uncertain = uncertain
        prefix = f"{method} {path}: " if method else ""
        super().__init__(prefix + message)


class TransportError(KinstaError):
    """The request failed below HTTP. `sent` tells whether it may have reached Kinsta."""

    def __init__(self, message: str, *, method: str = "", path: str = "", sent: bool) -> None:
        self.sent = sent
        super().__init__(message, method=method, path=path, uncertain=sent and method in CHANGES)


class RateLimitedError(KinstaError):
    def __init__(
        self, message: str, *, method: str = "", path: str = "", retry_after_s: float | None
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, method=method, path=path)


class KinstaAPIError(KinstaError):
    """An error status. Only a 4xx proves a change request was refused (by Kinsta or a proxy
    before it); after a 5xx (a 502 from a load balancer, Kinsta's own 500) it may have acted."""

    def __init__(self, message: str, *, method: str = "", path: str = "", status: int) -> None:
        self.status = status
        refused = 400 <= status < 500
        super().__init__(
            f"HTTP {status}: {message}",
            method=method,
            path=path,
            uncertain=method in CHANGES and not refused,
        )
        self.kinsta_message = message


class AuthenticationError(KinstaAPIError):
    pass


class NotFoundAPIError(KinstaAPIError):
    pass


class ResponseFormatError(KinstaError):
    """A 2xx body that cannot be read: a change request was accepted, with what effect is
    unknown (no operation id to follow)."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message, method=method, path=path, uncertain=method in CHANGES)
