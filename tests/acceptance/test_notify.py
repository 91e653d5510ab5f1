"""Notifications from `trigger`, through the real CLI against the sandbox: the daemon's messages
(a webhook, an e-mail over STARTTLS, the heartbeat's start ping) reach receivers on loopback
and are recorded in history; --no-notify sends none."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

from tests.acceptance.conftest import Cli, SandboxProcess, use
from tests.standins import SmtpStandIn, http_receiver, smtp_server

PASSWORD = "acceptance-smtp-password"
JOBS = """version: 1
kinsta:
  rate_limits: {{per_minute: 600}}
  polling: {{first_poll: 0.05s, max_interval: 0.2s}}
notify:
  webhooks: [{url}/hook-secret-token]
  email: [ops@example.com]
  heartbeat_url: {url}/ping
jobs:
  - id: caches
    targets: {{environment: live}}
    actions: [clear_cache]
"""


def test_trigger_notifies_as_the_daemon_does_unless_told_not_to(
    cli: Cli, quick_sandbox: SandboxProcess, tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    with (
        http_receiver() as (url, received),
        smtp_server(SmtpStandIn(tls, "robot", PASSWORD)) as smtp,
    ):
        cli.env.update(
            SSL_CERT_FILE=str(tmp_path / "ca.pem"),  # the receiver's private CA
            KINSTA_SCHEDULER_SMTP_HOST="127.0.0.1",
            KINSTA_SCHEDULER_SMTP_PORT=str(smtp.port),
            KINSTA_SCHEDULER_SMTP_USER="robot",
            KINSTA_SCHEDULER_SMTP_PASSWORD=PASSWORD,
            KINSTA_SCHEDULER_SMTP_FROM="scheduler@example.com",
        )
        use(cli, quick_sandbox, JOBS.format(url=url))
        quick_sandbox.post("fail-next", {"kind": "cache:clear", "count": 1})
        result = cli("trigger", "caches")
        assert result.code == 1, result.err
        assert [(m, p) for m, p, _ in received] == [
            ("GET", "/ping/start"),  # the run started; it failed, so no success ping
            ("POST", "/hook-secret-token"),
        ]
        body = received[1][2]
        assert body["event"] == "failure" and body["job_id"] == "caches"
        assert "clear_cache failed on 1 environment(s)" in body["text"]
        (mail,) = smtp.messages
        assert (mail.tls, mail.user, mail.recipients) == (True, "robot", ["ops@example.com"])
        assert (
            mail.message["Subject"] == f"kinsta-scheduler: job caches run {body['run_id']} failed"
        )
        assert "notifications: 3 delivered" in result.out
        for secret in (PASSWORD, "hook-secret-token"):
            assert secret not in result.out + result.err

        deliveries = cli("history", "notifications", "--format", "json").json()
        assert sorted((d["kind"], d["channel"], d["ok"]) for d in deliveries) == [
            ("failure", "email", True),
            ("failure", "json", True),
            ("start", "heartbeat", True),
        ]
        assert {d["run_id"] for d in deliveries} == {body["run_id"]}
        assert "smtp://127.0.0.1" in {d["destination"] for d in deliveries}

        quick_sandbox.post("fail-next", {"kind": "cache:clear", "count": 1})
        quiet = cli("trigger", "caches", "--no-notify")
        assert quiet.code == 1, quiet.err
        assert "notifications:" not in quiet.out
        assert len(received) == 2 and len(smtp.messages) == 1  # nothing more was sent
        again = cli("history", "notifications", "--format", "json").json()
        assert len(again) == len(deliveries)
