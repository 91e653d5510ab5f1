"""jobs.yaml's `report:`, the branding of client reports (`kinsta-scheduler report`):

    report:
      title: Acme Agency · monthly maintenance   # the report's heading
      logo: acme-logo.png                         # beside jobs.yaml (or absolute): png, jpg,
                                                  # gif, svg or webp, embedded in the report
      accent: "#0b7285"                           # a CSS colour: headings, rules, the cards

The logo is checked when the file is loaded (it exists, is a readable file of a known type, at
most 2 MB), so a report never finds out at the end of a month that it cannot be made; and read
by the same checks again when a report embeds it (`read_logo`). A logo goes base64 into a report
sent to a client, so only a regular file whose first bytes are an image of its suffix's kind is
read, and never more than 2 MB of it. A symlink is followed (a Kubernetes ConfigMap mounts its
files as symlinks) and what it resolves to is checked: a symlink to /proc/self/environ, a
device, a FIFO or any file that is no image is refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePath

from pydantic import BaseModel, ConfigDict, Field, field_validator

from scheduler.branding import (
    DEFAULT_ACCENT,
    DEFAULT_TITLE,
    LOGO_TYPES,
    MAX_LOGO_BYTES,
    MAX_TITLE,
    ReportBranding,
    colour_problem,
    image_problem,
)

# Kernel pseudo-files look like regular files (of size 0) but are the process's secrets.
PSEUDO_ROOTS = (PurePath("/proc"), PurePath("/sys"), PurePath("/dev"))


class LogoRefused(ValueError):
    """Why a logo cannot be embedded (the message names the file)."""


class ReportModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(DEFAULT_TITLE, min_length=1, max_length=MAX_TITLE)
    logo: str | None = Field(None, min_length=1)
    accent: str = DEFAULT_ACCENT

    @field_validator("accent")
    @classmethod
    def _accent(cls, value: str) -> str:
        problem = colour_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value.strip()

    @field_validator("logo")
    @classmethod
    def _logo_type(cls, value: str | None) -> str | None:
        if value is not None and Path(value).suffix.lower() not in LOGO_TYPES:
            kinds = ", ".join(sorted(LOGO_TYPES))
            raise ValueError(f"{value[:80]!r}: a logo is an image file ({kinds})")
        return value


def read_logo(path: Path) -> bytes:
    """The logo's bytes, when `path` resolves to a regular image file of at most
    MAX_LOGO_BYTES whose first bytes match its suffix; else LogoRefused."""
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError as exc:
        raise LogoRefused(f"{path}: no such file") from exc
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise LogoRefused(f"{path}: cannot read ({_why(exc)})") from exc
    if any(real.is_relative_to(root) for root in PSEUDO_ROOTS):
        raise LogoRefused(f"{path}: {real} is not a regular file")
    data = _read_regular(path, real)
    if len(data) > MAX_LOGO_BYTES:
        raise LogoRefused(f"{path}: larger than {MAX_LOGO_BYTES:,} bytes")
    problem = image_problem(path.suffix, data)
    if problem is not None:
        raise LogoRefused(f"{path}: {problem}")
    return data


def _read_regular(path: Path, real: Path) -> bytes:
    # O_NONBLOCK: opening a FIFO must not hang; the type and size are those of what was opened.
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise LogoRefused(f"{path}: cannot read ({_why(exc)})") from exc
    try:
        _check_opened(path, real, os.fstat(fd))
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return stream.read(MAX_LOGO_BYTES + 1)
    except OSError as exc:
        raise LogoRefused(f"{path}: cannot read ({_why(exc)})") from exc
    finally:
        os.close(fd)


def _check_opened(path: Path, real: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        shown = path if real == path.absolute() else f"{path} ({real})"
        raise LogoRefused(f"{shown}: not a file")
    if info.st_size == 0:
        raise LogoRefused(f"{path}: empty")
    if info.st_size > MAX_LOGO_BYTES:
        raise LogoRefused(
            f"{path}: {info.st_size:,} bytes; a logo may have at most {MAX_LOGO_BYTES:,}"
        )


def _why(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def logo_problem(path: Path) -> str | None:
    """Why the logo at `path` cannot be embedded; None when it can."""
    try:
        read_logo(path)
    except LogoRefused as exc:
        return str(exc)
    return None


def report_branding(raw: ReportModel, config_file: str) -> tuple[ReportBranding, str | None]:
    """The branding, its logo resolved beside jobs.yaml; and why the logo cannot be used."""
    logo = None
    if raw.logo is not None:
        given = Path(raw.logo).expanduser()
        resolved = given if given.is_absolute() else Path(config_file).parent / given
        problem = logo_problem(resolved)
        if problem is not None:
            return ReportBranding(raw.title, None, raw.accent), problem
        logo = str(resolved.resolve())
    return ReportBranding(raw.title.strip() or DEFAULT_TITLE, logo, raw.accent), None
