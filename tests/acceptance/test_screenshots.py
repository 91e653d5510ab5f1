"""`make screenshots` keeps working: the same code, into a temporary directory. Each picture is
a PNG of a real size (a blank or failed page would be tiny)."""

from __future__ import annotations

from pathlib import Path

from tests import screenshots


def test_make_screenshots_photographs_every_page_and_a_report(tmp_path: Path) -> None:
    made = screenshots.make(tmp_path / "docs")
    names = sorted(p.name for p in made)
    expected = [f"dashboard-{page}.png" for page in screenshots.PAGES] + ["report.png"]
    assert names == sorted(expected)
    for path in made:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", path
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width >= 600 and height >= 400, (path, width, height)
        assert len(data) > 20_000, path
