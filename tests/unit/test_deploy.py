"""Deployment files that cannot surprise: the container's entrypoint (a host directory owned by
another uid is explained, not a SQLite error later), the compose file and the systemd unit
(stop timeouts above the drain time, reload by SIGHUP, the schema upgraded before the daemon),
and the lock files every install takes its versions and hashes from."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from scheduler.domain import DaemonSettings

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
DRAIN_S = DaemonSettings().shutdown_timeout_s
NOBODY = 65534


def _seconds(value: str | int) -> float:
    text = str(value).strip()
    return float(text[:-1]) if text.endswith("s") else float(text)


def _entrypoint(
    tmp_path: Path, data: Path, *args: str, as_nobody: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    program = tmp_path / "fake-scheduler"
    program.write_text('#!/bin/sh\necho "ran: $*"\n')
    program.chmod(0o755)
    command = ["sh", str(ENTRYPOINT), *args]
    if as_nobody:  # root writes anywhere: become a uid that does not own the directory
        command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    environment = {
        "PATH": os.environ["PATH"],
        "KINSTA_SCHEDULER_DATA": str(data),
        "KINSTA_SCHEDULER_BIN": str(program),
        **env,
    }
    return subprocess.run(
        command, check=False, env=environment, capture_output=True, text=True, timeout=30
    )


def test_the_entrypoint_runs_the_daemon_when_the_data_directory_is_writable(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    done = _entrypoint(tmp_path, data, "run", "--sandbox")
    assert (done.returncode, done.stdout, done.stderr) == (0, "ran: run --sandbox\n", "")
    assert list(data.iterdir()) == []  # its write test leaves nothing behind


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to change uid"
)
def test_a_data_directory_owned_by_another_uid_is_explained_with_exit_2() -> None:
    # Out of pytest's own (private) temporary directory, so that the other uid can reach it.
    tmp_path = Path(tempfile.mkdtemp(prefix="kinsta-scheduler-deploy-"))
    try:
        tmp_path.chmod(0o755)
        _refused_then_explained(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def _refused_then_explained(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)  # root's: the container's user cannot write there
    refused = _entrypoint(tmp_path, data, "run", as_nobody=True)
    assert refused.returncode == 2 and "ran:" not in refused.stdout
    assert f"{data} is not writable by uid {NOBODY}" in refused.stderr
    assert "it belongs to 0:0" in refused.stderr
    assert "chown -R" in refused.stderr and '--user "$(id -u):$(id -g)"' in refused.stderr
    # A history in PostgreSQL writes nothing there: jobs.yaml may be mounted read-only.
    url = "postgresql+psycopg://scheduler@db/scheduler"
    ok = _entrypoint(tmp_path, data, "run", as_nobody=True, KINSTA_SCHEDULER_DATABASE_URL=url)
    assert (ok.returncode, ok.stdout) == (0, "ran: run\n")
    # Commands that write nothing run anywhere.
    assert _entrypoint(tmp_path, data, "--version", as_nobody=True).returncode == 0


def test_a_missing_data_directory_is_named(tmp_path: Path) -> None:
    done = _entrypoint(tmp_path, tmp_path / "nowhere", "run")
    assert done.returncode == 2 and "does not exist: mount a directory there" in done.stderr


def test_the_dockerfile_uses_the_entrypoint_and_the_lock() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "COPY deploy/entrypoint.sh /usr/local/bin/kinsta-scheduler-entrypoint" in text
    assert 'ENTRYPOINT ["kinsta-scheduler-entrypoint"]' in text
    assert "--require-hashes -r requirements.lock" in text
    # report --format pdf: WeasyPrint's Pango and a font, in the image the daemon runs from
    final = text.rsplit("\nFROM ", 1)[1]
    assert "libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core" in final


def test_both_stages_start_from_the_base_image_pinned_by_digest() -> None:
    text = (ROOT / "Dockerfile").read_text()
    pinned = re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim@sha256:([0-9a-f]{64})$", text, re.M)
    assert pinned, "the base image must be pinned by digest in ARG PYTHON_IMAGE"
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    bot = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert {"package-ecosystem": "docker", "directory": "/"}.items() <= bot["updates"][0].items()


def test_compose_upgrades_the_schema_before_the_daemon_and_drains_on_stop() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    daemon = services["scheduler"]
    assert daemon["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert _seconds(daemon["stop_grace_period"]) > DRAIN_S
    assert "healthz" in " ".join(daemon["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    url = daemon["environment"]["KINSTA_SCHEDULER_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://")
    assert daemon["ports"] == ["127.0.0.1:9464:9464"]  # loopback unless the operator opens it


def test_the_systemd_unit_reloads_on_sighup_and_waits_longer_than_the_drain(
    tmp_path: Path,
) -> None:
    text = (ROOT / "deploy" / "kinsta-scheduler.service").read_text()
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(text)
    service = unit["Service"]
    assert _seconds(service["TimeoutStopSec"]) > DRAIN_S
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillSignal"] == "SIGTERM" and service["RestartPreventExitStatus"] == "2"
    if shutil.which("systemd-analyze") is None:
        return
    copy = tmp_path / "kinsta-scheduler.service"  # the binary named must exist to verify
    copy.write_text(re.sub(r"ExecStart=\S+", f"ExecStart={sys.executable}", text))
    checked = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr


def _pins(lock: Path) -> dict[str, tuple[Version, int]]:
    """name -> (version, how many hashes) in a lock file made by `make lock`."""
    pins: dict[str, tuple[Version, int]] = {}
    for block in re.split(r"\n(?=\S)", lock.read_text()):
        found = re.match(r"([A-Za-z0-9_.\-\[\]]+)==(\S+)", block)
        if found:
            name = canonicalize_name(found[1].split("[")[0])
            pins[name] = (Version(found[2]), block.count("--hash=sha256:"))
    return pins


@pytest.mark.parametrize(
    ("lock", "extras"), [("requirements.lock", ()), ("requirements-dev.lock", ("dev",))]
)
def test_the_lock_files_pin_what_pyproject_asks_for_with_hashes(
    lock: str, extras: tuple[str, ...]
) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    pins = _pins(ROOT / lock)
    for line in wanted:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} lacks {name}: run `make lock`"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock} pins {name} {version}, pyproject asks {requirement.specifier}: `make lock`"
        )
    assert all(hashes for _, hashes in pins.values())


def test_the_wheel_ships_every_package_and_every_file_they_read() -> None:
    """A package or a template missing from pyproject installs fine with `-e .` (the tests'
    install) and breaks only in the image: every folder of Python under scheduler/ is a listed
    package, and every other file there is matched by its package's package-data."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = {p for p in setuptools["packages"] if not p.startswith("scheduler._migrations")}
    package = ROOT / "scheduler"
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in package.rglob("__init__.py")}
    assert found == listed
    data = setuptools["package-data"]
    for path in package.rglob("*"):
        if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
            continue
        owner = path.parent
        while not (owner / "__init__.py").exists():
            owner = owner.parent
        name = ".".join(owner.relative_to(ROOT).parts)
        inner = path.relative_to(owner)
        assert any(inner.match(glob) for glob in data.get(name, [])), f"{path} is not shipped"
