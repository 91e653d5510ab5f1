"""jobs.yaml's `report:` (client reports' branding): its values, and each problem with file,
line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.branding import DEFAULT_ACCENT, DEFAULT_TITLE, ReportBranding
from scheduler.config import parse
from scheduler.errors import ConfigError

HEAD = "version: 1\nkinsta: {api_key: k}\n"


def config_of(tmp_path: Path, report: str) -> ReportBranding:
    file = tmp_path / "jobs.yaml"
    return parse(HEAD + report, str(file), {}).report


def problems_of(tmp_path: Path, report: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        config_of(tmp_path, report)
    return [str(p) for p in raised.value.problems]


def test_without_report_the_defaults(tmp_path: Path) -> None:
    assert config_of(tmp_path, "") == ReportBranding(DEFAULT_TITLE, None, DEFAULT_ACCENT)


def test_title_logo_beside_jobs_yaml_and_accent(tmp_path: Path) -> None:
    (tmp_path / "brand").mkdir()
    (tmp_path / "brand" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    branding = config_of(
        tmp_path, 'report:\n  title: Acme\n  logo: brand/logo.png\n  accent: "#0b7285"\n'
    )
    assert branding == ReportBranding("Acme", str(tmp_path / "brand" / "logo.png"), "#0b7285")


def test_a_missing_logo_is_named_with_its_line_and_field(tmp_path: Path) -> None:
    found = problems_of(tmp_path, "report:\n  title: Acme\n  logo: missing.png\n")
    assert found == [
        f"{tmp_path / 'jobs.yaml'}:5: report.logo: {tmp_path / 'missing.png'}: no such file"
    ]


def test_a_logo_that_is_a_directory_or_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "logo.png").mkdir()
    assert problems_of(tmp_path, "report:\n  logo: logo.png\n")[0].endswith("logo.png: not a file")
    found = problems_of(tmp_path, "report:\n  logo: notes.txt\n")
    assert "report.logo: 'notes.txt': a logo is an image file" in found[0]


def test_an_accent_that_is_not_a_plain_colour(tmp_path: Path) -> None:
    (found,) = problems_of(tmp_path, 'report:\n  accent: "red; } body { display: none"\n')
    assert ":4: report.accent: " in found and "is not a CSS colour" in found


def test_unknown_keys_and_an_empty_title(tmp_path: Path) -> None:
    found = problems_of(tmp_path, "report:\n  title: ''\n  colour: red\n")
    assert any("report.colour: unknown key" in p for p in found)
    assert any("report.title" in p for p in found)
