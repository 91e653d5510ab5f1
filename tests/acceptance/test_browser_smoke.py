"""The browser harness itself: a page served on loopback renders, console errors are seen."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import Browser, browser  # noqa: F401 - the fixture


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "ok.html").write_text(
        '<!doctype html><title>ok</title><link rel="icon" href="data:,"><h1>fleet</h1>'
    )
    (tmp_path / "bad.html").write_text(
        "<!doctype html><title>bad</title><script>console.error('broken')</script>"
    )

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_page_renders_and_console_errors_are_caught(
    browser: Browser,  # noqa: F811
    site: str,
    tmp_path: Path,
) -> None:
    browser.open(f"{site}/ok.html")
    assert browser.find("h1").text == "fleet"
    assert browser.console_errors() == []
    shot = browser.screenshot(tmp_path / "shots" / "ok.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    browser.open(f"{site}/bad.html")
    assert any("broken" in message for message in browser.console_errors())
