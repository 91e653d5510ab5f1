"""jobs.yaml's `report:` (client reports' branding): its values, and each problem with file,
line and field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scheduler.branding import DEFAULT_ACCENT, DEFAULT_TITLE, MAX_LOGO_BYTES, ReportBranding
from scheduler.config import parse
from scheduler.config.report import LogoRefused, read_logo
from scheduler.errors import BadInputError, ConfigError
from scheduler.reports.html import logo_uri

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


PNG_HEAD = b"\x89PNG\r\n\x1a\n"


def test_a_logo_symlinked_to_a_proc_file_is_refused(tmp_path: Path) -> None:
    """/proc files look regular with size 0: /proc/self/environ holds KINSTA_API_KEY."""
    (tmp_path / "logo.png").symlink_to("/proc/self/environ")
    (found,) = problems_of(tmp_path, "report:\n  logo: logo.png\n")
    assert ":4: report.logo: " in found and found.endswith("/environ is not a regular file")


def test_a_logo_symlinked_to_an_image_is_followed(tmp_path: Path) -> None:
    (tmp_path / "brand.png").write_bytes(PNG_HEAD + b"rest")
    (tmp_path / "logo.png").symlink_to(tmp_path / "brand.png")
    branding = config_of(tmp_path, "report:\n  logo: logo.png\n")
    assert branding.logo == str(tmp_path / "brand.png")


def test_a_logo_whose_content_is_not_its_kind_of_image(tmp_path: Path) -> None:
    (tmp_path / "logo.png").write_bytes(b"KINSTA_API_KEY=secret\n")
    (tmp_path / "logo.svg").write_bytes(
        b"\xef\xbb\xbf\n  <svg xmlns='http://www.w3.org/2000/svg'/>"
    )
    (found,) = problems_of(tmp_path, "report:\n  logo: logo.png\n")
    assert found.endswith("logo.png: its content is not a png image")
    assert config_of(tmp_path, "report:\n  logo: logo.svg\n").logo == str(tmp_path / "logo.svg")


def test_a_logo_that_is_a_fifo_or_empty_is_refused_without_waiting(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "logo.gif")
    (tmp_path / "logo.jpg").write_bytes(b"")
    assert problems_of(tmp_path, "report:\n  logo: logo.gif\n")[0].endswith("not a file")
    assert problems_of(tmp_path, "report:\n  logo: logo.jpg\n")[0].endswith("logo.jpg: empty")


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("a.png", PNG_HEAD),
        ("a.JPG", b"\xff\xd8\xff\xe0"),
        ("a.jpeg", b"\xff\xd8\xff\xdb"),
        ("a.gif", b"GIF89a"),
        ("a.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 "),
        ("a.svg", b"<?xml version='1.0'?><svg/>"),
    ],
)
def test_each_kind_of_image_is_known_by_its_first_bytes(
    tmp_path: Path, name: str, head: bytes
) -> None:
    (tmp_path / name).write_bytes(head + b"\x00" * 8)
    assert read_logo(tmp_path / name).startswith(head)
    (tmp_path / "other.gif").write_bytes(head + b"\x00" * 8)
    if not name.endswith(".gif"):
        with pytest.raises(LogoRefused, match="not a gif image"):
            read_logo(tmp_path / "other.gif")


def test_a_logo_too_big_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with big.open("wb") as stream:  # sparse: costs no disk
        stream.write(PNG_HEAD)
        stream.truncate(MAX_LOGO_BYTES + 1)
    with pytest.raises(LogoRefused, match="a logo may have at most 2,000,000"):
        read_logo(big)


def test_the_report_reads_the_logo_again_with_the_same_checks(tmp_path: Path) -> None:
    """A logo swapped for a symlink to /proc after jobs.yaml was loaded: exit 2, not embedded."""
    logo = tmp_path / "logo.png"
    logo.symlink_to("/proc/self/environ")
    with pytest.raises(BadInputError, match=r"report\.logo .*is not a regular file"):
        logo_uri(str(logo))
