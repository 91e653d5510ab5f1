"""Composition: from a Config to the connected parts a command needs (store, client, runner),
including the in-process sandbox for --sandbox. Entry points call this, then one function."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from scheduler import logs
from scheduler.clock import Clock, SystemClock
from scheduler.domain import Config, Secret
from scheduler.errors import ConfigError, Problem
from scheduler.history import HistoryStore, make_engine
from scheduler.history.ledger import SqlLedger
from scheduler.history.migrate import ensure_current
from scheduler.kinsta import KinstaClient, RateGovernor
from scheduler.kinsta.governor import key_fingerprint
from scheduler.runner import Runner
from scheduler.sandbox import Sandbox, SandboxOptions, SandboxServer


def open_store(database_url: str) -> HistoryStore:
    engine = make_engine(database_url)
    ensure_current(engine)
    return HistoryStore(engine)


def start_sandbox(config: Config) -> SandboxServer:
    options = SandboxOptions(
        sites=config.sandbox.sites,
        seed=config.sandbox.seed,
        time_scale=config.sandbox.time_scale,
        per_minute=config.kinsta.rate_limits.per_minute,
        window_s=config.kinsta.rate_limits.window_s,
    )
    return SandboxServer(Sandbox(options)).start()


@dataclass
class Services:
    config: Config
    store: HistoryStore
    client: KinstaClient
    governor: RateGovernor
    runner: Runner
    sandbox: SandboxServer | None

    def close(self) -> None:
        self.client.close()
        self.store.engine.dispose()
        if self.sandbox is not None:
            self.sandbox.stop()


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def open_services(config: Config, *, sandbox: bool, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    store = open_store(config.database_url)
    server = start_sandbox(config) if sandbox else None
    if server is not None:
        api_url, key = server.url, Secret(server.sandbox.options.api_key)
    elif config.kinsta.api_key is None:
        raise ConfigError(
            [Problem(config.path, None, "no API key: set KINSTA_API_KEY (or use --sandbox)")]
        )
    else:
        api_url, key = config.kinsta.api_url, config.kinsta.api_key
    logs.register_secret(key.reveal())
    governor = RateGovernor(
        config.kinsta.rate_limits,
        clock,
        ledger=SqlLedger(store.engine),
        scope=key_fingerprint(key.reveal()),
        host=socket.gethostname(),
        hold_s=config.kinsta.timeout_s,
    )
    client = KinstaClient(api_url, key, governor, clock, timeout_s=config.kinsta.timeout_s)
    try:
        company_id = (None if sandbox else config.kinsta.company_id) or client.validate().company
    except BaseException:
        client.close()
        if server is not None:
            server.stop()
        raise
    runner = Runner(client, store, clock, config.kinsta.polling, company_id, started_by=identity())
    return Services(config, store, client, governor, runner, server)
