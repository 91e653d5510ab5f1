"""Prometheus metrics and the health check, routes of the daemon's HTTP server (`run
--http-port N`, also spelled --metrics-port; scheduler.httpd):

GET /metrics  runs and tasks by status, 429s, API requests and governor wait seconds per
              company, operation durations, last success time per job, schedule lag, paused
              jobs and when their pauses end
GET /healthz  200 when the scheduler loop is alive and the database answers, else 503
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from scheduler.domain import Run, RunStatus, RunTrigger, Task
from scheduler.events import Bus, RunFinished
from scheduler.httpd import Request, Response, Routes
from scheduler.kinsta.governor import RateGovernor

Health = Callable[[], tuple[bool, str]]
# Per paused job: where the pause comes from (`pause`, or `jobs.yaml`) and its end (None: none).
PausedJobs = Callable[[], Mapping[str, tuple[str, datetime | None]]]


class _GovernorCollector(Collector):
    """Read the governors' own counters at scrape time."""

    def __init__(self, governors: Mapping[str, RateGovernor]) -> None:
        self._governors = governors

    def collect(self) -> Iterator[CounterMetricFamily]:
        requests = CounterMetricFamily(
            "kinsta_scheduler_api_requests", "Requests sent to Kinsta's API", labels=["company"]
        )
        limited = CounterMetricFamily(
            "kinsta_scheduler_rate_limited", "429 answers from Kinsta", labels=["company"]
        )
        waited = CounterMetricFamily(
            "kinsta_scheduler_governor_wait_seconds",
            "Seconds requests waited for rate budget",
            labels=["company"],
        )
        for company, governor in self._governors.items():
            requests.add_metric([company], governor.requests)
            limited.add_metric([company], governor.rate_limited)
            waited.add_metric([company], governor.total_wait_s)
        yield from (requests, limited, waited)


class _PauseCollector(Collector):
    """The jobs paused now, and until when, read at scrape time (from what the daemon last
    read of the pause book: a scrape never waits for the database)."""

    def __init__(self, paused: PausedJobs) -> None:
        self._paused = paused

    def collect(self) -> Iterator[GaugeMetricFamily]:
        paused = GaugeMetricFamily(
            "kinsta_scheduler_job_paused",
            "1 for each paused job: by `pause` or by enabled: false in jobs.yaml",
            labels=["job", "source"],
        )
        until = GaugeMetricFamily(
            "kinsta_scheduler_job_paused_until_timestamp_seconds",
            "When each paused job's pause ends (Unix time; absent: it has no end)",
            labels=["job"],
        )
        for job, (source, end) in sorted(self._paused().items()):
            paused.add_metric([job, source], 1)
            if end is not None:
                until.add_metric([job], end.timestamp())
        yield from (paused, until)


class Metrics:
    def __init__(self, governors: Mapping[str, RateGovernor] | None = None) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.runs = Counter(
            "kinsta_scheduler_runs", "Runs by job and status", ["job", "status"], registry=registry
        )
        self.tasks = Counter(
            "kinsta_scheduler_tasks",
            "Tasks by action and status",
            ["action", "status"],
            registry=registry,
        )
        self.operation_seconds = Histogram(
            "kinsta_scheduler_operation_seconds",
            "How long Kinsta operations took, by action and final state",
            ["action", "state"],
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
            registry=registry,
        )
        self.last_success = Gauge(
            "kinsta_scheduler_last_success_timestamp_seconds",
            "When each job last finished a successful run (Unix time)",
            ["job"],
            registry=registry,
        )
        self.schedule_lag = Histogram(
            "kinsta_scheduler_schedule_lag_seconds",
            "How long after its slot a scheduled run started",
            ["job"],
            buckets=(0.1, 0.5, 1, 2, 5, 15, 60, 300, 900),
            registry=registry,
        )
        if governors is not None:
            registry.register(_GovernorCollector(governors))

    def watch_pauses(self, paused: PausedJobs) -> None:
        """Expose the paused jobs (and their ends) as the daemon sees them."""
        self.registry.register(_PauseCollector(paused))

    def subscribe(self, bus: Bus) -> None:
        bus.subscribe(RunFinished, lambda event: self.run_finished(event.run, event.tasks))

    def run_finished(self, run: Run, tasks: Sequence[Task]) -> None:
        self.runs.labels(run.job_id, run.status.value).inc()
        if run.status is RunStatus.SUCCEEDED and run.finished_at is not None:
            self.last_success.labels(run.job_id).set(run.finished_at.timestamp())
        if (
            run.trigger is RunTrigger.SCHEDULE
            and run.started_at
            and run.status
            in (
                RunStatus.SUCCEEDED,
                RunStatus.FAILED,
                RunStatus.INTERRUPTED,
                RunStatus.CANCELLED,
                RunStatus.HALTED,
            )
        ):
            lag = (run.started_at - run.scheduled_for).total_seconds()
            self.schedule_lag.labels(run.job_id).observe(max(0.0, lag))
        for task in tasks:
            self.tasks.labels(task.action, task.status.value).inc()
            for op in task.operations:
                if op.finished_at is not None:
                    seconds = (op.finished_at - op.started_at).total_seconds()
                    self.operation_seconds.labels(op.action, op.state.value).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def add_routes(routes: Routes, metrics: Metrics, health: Health) -> Routes:
    """GET /metrics and GET /healthz on the daemon's HTTP server (scheduler.httpd)."""

    def exposition(_request: Request) -> Response:
        return Response(200, metrics.exposition(), CONTENT_TYPE_LATEST)

    def healthz(_request: Request) -> Response:
        ok, detail = health()
        return Response.text(200 if ok else 503, detail)

    return routes.add("GET", "/metrics", exposition).add("GET", "/healthz", healthz)
