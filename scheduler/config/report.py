"""jobs.yaml's `report:`, the branding of client reports (`kinsta-scheduler report`):

    report:
      title: Acme Agency · monthly maintenance   # the report's heading
      logo: acme-logo.png                         # beside jobs.yaml (or absolute): png, jpg,
                                                  # gif, svg or webp, embedded in the report
      accent: "#0b7285"                           # a CSS colour: headings, rules, the cards

The logo is checked when the file is loaded (it exists, is a readable file of a known type, at
most 2 MB), so a report never finds out at the end of a month that it cannot be made."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from scheduler.branding import (
    DEFAULT_ACCENT,
    DEFAULT_TITLE,
    LOGO_TYPES,
    MAX_LOGO_BYTES,
    MAX_TITLE,
    ReportBranding,
    colour_problem,
)


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


def logo_problem(path: Path) -> str | None:
    """Why the logo at `path` cannot be embedded; None when it can."""
    try:
        if not path.is_file():
            return f"{path}: no such file" if not path.exists() else f"{path}: not a file"
        size = path.stat().st_size
        with path.open("rb") as stream:
            stream.read(1)
    except OSError as exc:
        return f"{path}: cannot read ({exc.strerror or exc})"
    if size > MAX_LOGO_BYTES:
        return f"{path}: {size:,} bytes; a logo may have at most {MAX_LOGO_BYTES:,}"
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
