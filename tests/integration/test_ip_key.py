"""The per-IP bucket's key (issue 11 item 20): replicas behind one NAT share Kinsta's per-IP
budget only if they share the key; `rate_limits.ip_key` names it, the host name by default."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import select

from scheduler.bootstrap import open_services
from scheduler.config import parse
from scheduler.domain import Config
from scheduler.history.tables import rate_permits


def config(tmp_path: Path, rate_limits: str) -> Config:
    text = f"""version: 1
database: sqlite:///{tmp_path / "history.db"}
kinsta:
  rate_limits: {rate_limits}
sandbox: {{sites: 2, seed: 1}}
jobs: []
"""
    return parse(text, str(tmp_path / "jobs.yaml"), {})


def ip_buckets_of_two_replicas(cfg: Config, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Two processes on two hosts (behind one NAT) each send one request; the per-IP buckets
    they took permits from."""
    for host in ("replica-a", "replica-b"):
        monkeypatch.setattr(socket, "gethostname", lambda host=host: host)
        services = open_services(cfg, sandbox=True, upgrade_sqlite=True)
        try:
            (client,) = services.clients.values()
            client.validate()
            with services.store.engine.connect() as db:
                buckets = set(db.scalars(select(rate_permits.c.bucket)))
        finally:
            services.close()
    return {b for b in buckets if b.startswith("ip:")}


def test_replicas_with_one_ip_key_share_the_per_ip_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path, "{ip_key: 203.0.113.7}")
    assert cfg.kinsta.rate_limits.ip_key == "203.0.113.7"
    assert ip_buckets_of_two_replicas(cfg, monkeypatch) == {"ip:203.0.113.7"}


def test_without_ip_key_each_host_has_its_own_per_ip_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path, "{per_ip_per_minute: 1000}")
    assert ip_buckets_of_two_replicas(cfg, monkeypatch) == {"ip:replica-a", "ip:replica-b"}
