"""The API key never reaches a log line."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from scheduler import logs


def test_registered_secret_is_masked_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info", json=True)
    logs.register_secret("sk-live-SECRET-1234")
    structlog.get_logger("t").info(
        "sent", header="Bearer sk-live-SECRET-1234", nested={"k": ["sk-live-SECRET-1234"]}
    )
    logging.getLogger("third.party").warning("oops sk-live-SECRET-1234")
    err = capsys.readouterr().err
    assert "sk-live-SECRET-1234" not in err
    lines = [json.loads(line) for line in err.strip().splitlines()]
    assert lines[0]["header"] == "Bearer ***" and lines[0]["nested"] == {"k": ["***"]}
    assert lines[1]["event"] == "oops ***"
