"""`report` through the real command line over a SQLite history seeded through the store
(tests/report_history.py's November): JSON, HTML and PDF (read back with poppler's pdftotext and
pdftoppm), and every kind of bad input refused with exit 2."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scheduler.branding import ReportBranding
from scheduler.errors import BadInputError
from scheduler.history import make_engine, memory_store, sql_store
from scheduler.history.migrate import upgrade
from scheduler.kinsta.governor import key_fingerprint
from scheduler.reporting import month_period
from scheduler.reports import Selection, gather, render_html
from scheduler.usage import RequestMinute
from tests.report_history import seed

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)

# A 1x1 PNG: the logo.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
JOBS = """version: 1
timezone: UTC
kinsta: {api_key: k-test}
report:
  title: Acme Agency · monthly maintenance
  logo: logo.png
  accent: "#0b7285"
jobs:
  - id: nightly
    schedule: {cron: "0 3 * * *"}
    actions: [backup]
  - id: weekly
    schedule: {cron: "0 3 * * 1"}
    actions: [update_themes]
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    engine = make_engine(f"sqlite:///{tmp_path / 'kinsta-scheduler.db'}")
    upgrade(engine)
    seed(sql_store(engine))
    engine.dispose()
    (tmp_path / "jobs.yaml").write_text(JOBS)
    (tmp_path / "logo.png").write_bytes(PNG)
    return tmp_path


def report(workdir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINSTA_")}
    return subprocess.run(
        [sys.executable, "-m", "scheduler", "report", *args],
        cwd=workdir, env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip


def test_json_goes_to_stdout(workdir: Path) -> None:
    done = report(workdir, "--month", "2026-11", "--format", "json")
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    assert doc["format"] == 1 and doc["title"] == "Acme Agency · monthly maintenance"
    assert [s["site"] for s in doc["sites"]] == ["acme", "bakery"]
    assert doc["fleet"]["updates"] == 2 and doc["period"]["label"] == "2026-11"


def test_a_site_and_a_company(workdir: Path) -> None:
    done = report(workdir, "--month", "2026-11", "--format", "json", "--site", "bak*")
    assert [s["site"] for s in json.loads(done.stdout)["sites"]] == ["bakery"]
    done = report(workdir, "--month", "2026-11", "--format", "json", "--company", "default")
    doc = json.loads(done.stdout)
    assert doc["filters"] == {"company": "default"} and len(doc["sites"]) == 2


def test_a_company_report_counts_its_keys_requests_only(workdir: Path) -> None:
    """The seeded requests are other keys' (key-a, key-b): the company's key sent 9."""
    engine = make_engine(f"sqlite:///{workdir / 'kinsta-scheduler.db'}")
    minute = datetime(2026, 11, 12, 8, 30, tzinfo=UTC)
    sql_store(engine).requests.add_request_minutes(
        [RequestMinute(key_fingerprint("k-test"), minute, 9)]
    )
    engine.dispose()
    done = report(workdir, "--month", "2026-11", "--format", "json", "--company", "default")
    fleet = json.loads(done.stdout)["fleet"]
    assert sum(d["requests"] for d in fleet["per_day"]) == 9
    assert sum(d["rate_limited"] for d in fleet["per_day"]) == 0  # the 429 was key-a's
    assert fleet["budget"]["label"] == "requests per day, company default"
    everyone = json.loads(report(workdir, "--month", "2026-11", "--format", "json").stdout)
    assert sum(d["requests"] for d in everyone["fleet"]["per_day"]) == 55 + 9


def test_a_company_without_its_key_cannot_have_its_budget_told(workdir: Path) -> None:
    (workdir / "jobs.yaml").write_text(JOBS.replace("kinsta: {api_key: k-test}", "kinsta: {}"))
    done = report(workdir, "--month", "2026-11", "--format", "json", "--company", "default")
    assert done.returncode == 2 and done.stdout == b""
    assert b"--company default: its API key is not set" in done.stderr


def test_html_to_a_file_with_the_logo_and_charts(workdir: Path) -> None:
    done = report(workdir, "--month", "2026-11", "--out", "november.html")
    assert done.returncode == 0, done.stderr
    assert b"wrote november.html" in done.stderr and done.stdout == b""
    html = (workdir / "november.html").read_text()
    assert html.count("<svg") == 3 and 'src="data:image/png;base64,' in html
    assert "akismet" in html and "5.0 → 5.1" in html and "elementor 3.2.0" in html
    assert oct(os.stat(workdir / "november.html").st_mode & 0o777) == "0o644"


def test_pdf_pages_and_text(workdir: Path) -> None:
    done = report(workdir, "--month", "2026-11", "--format", "pdf", "--out", "november.pdf")
    assert done.returncode == 0, done.stderr
    pdf = workdir / "november.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for expected in (
        "Acme Agency",
        "acme",
        "bakery",
        "akismet",
        "5.0 → 5.1",
        "8.1",
        "8.2",
        "6.6.2",
        "Updates per week",
        "Outcomes per action",
        "Request budget",
    ):
        assert expected in text, expected  # fmt: skip
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(workdir / "page")], check=True)
    pages = sorted(workdir.glob("page-*.png"))
    assert pages and all(p.read_bytes().startswith(b"\x89PNG") for p in pages)
    assert b"weasyprint.progress" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--month", "2026-13"), "--month '2026-13': give a month as YYYY-MM"),
        (("--since", "30d", "--month", "2026-11"), "exactly one of --since"),
        ((), "exactly one of --since"),
        (("--since", "30d", "--site", "bakry"), "--site 'bakry': no such site in history; did you mean 'bakery'?"),
        (("--since", "30d", "--company", "acme-inc"), "--company 'acme-inc': not in"),
        (("--since", "30d", "--format", "pdf"), "--format pdf writes a binary file: give --out FILE"),
        (("--since", "30d", "--out", "no/such/dir/r.html"), "no directory no/such/dir"),
        (("--since", "30d", "--out", "."), "is a directory"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_exit_2(
    workdir: Path, args: tuple[str, ...], message: str
) -> None:
    done = report(workdir, *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr.decode()
    assert b"Traceback" not in done.stderr and done.stdout == b""


def test_an_out_file_that_cannot_be_written(workdir: Path) -> None:
    locked = workdir / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        done = report(workdir, "--since", "30d", "--out", "locked/r.html")
    finally:
        locked.chmod(0o700)
    if os.geteuid() == 0:  # root writes anywhere: the check must not refuse what works
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 2 and b"not writable" in done.stderr


def test_a_logo_gone_since_jobs_yaml_names_it(workdir: Path) -> None:
    (workdir / "logo.png").unlink()
    done = report(workdir, "--since", "30d")
    assert done.returncode == 2
    assert b"jobs.yaml:6: report.logo: " in done.stderr and b"no such file" in done.stderr


def test_a_logo_symlinked_to_the_environment_is_refused(workdir: Path) -> None:
    (workdir / "logo.png").unlink()
    (workdir / "logo.png").symlink_to("/proc/self/environ")
    done = report(workdir, "--since", "30d", "--format", "html")
    assert done.returncode == 2 and done.stdout == b""
    assert b"jobs.yaml:6: report.logo: " in done.stderr
    assert b"environ is not a regular file" in done.stderr and b"Traceback" not in done.stderr


def test_weasyprint_warns_of_nothing_in_the_report(caplog: pytest.LogCaptureFixture) -> None:
    """In this process, under pytest's filterwarnings=error: no Python warning, and WeasyPrint
    logs no CSS it ignored and no resource it could not fetch."""
    from scheduler.reports.pdf import render_pdf

    store = memory_store()
    seed(store)
    logo = ReportBranding(logo=None)
    built = gather(store, month_period("2026-11", UTC), Selection(), logo, NOW)
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        pdf = render_pdf(render_html(built))
    assert pdf.startswith(b"%PDF-") and caplog.records == []


def test_without_pango_pdf_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler.reports.pdf import render_pdf

    monkeypatch.setitem(sys.modules, "weasyprint", None)  # as if it could not be imported
    with pytest.raises(
        BadInputError, match=r"need WeasyPrint 68 or later and the system's Pango \(apt-get"
    ):
        render_pdf("<p>x</p>")


def test_a_weasyprint_without_url_fetcher_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WeasyPrint before 68 has no weasyprint.urls.URLFetcher: exit 2, not a traceback."""
    from scheduler.reports.pdf import render_pdf

    old = types.ModuleType("weasyprint")  # a module, not a package: no weasyprint.urls
    old.HTML = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "weasyprint", old)
    monkeypatch.delitem(sys.modules, "weasyprint.urls", raising=False)
    with pytest.raises(BadInputError, match=r"WeasyPrint 68 or later .*weasyprint\.urls"):
        render_pdf("<p>x</p>")
