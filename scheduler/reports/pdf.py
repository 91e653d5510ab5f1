"""The report's HTML as a PDF, by WeasyPrint: the only module that imports it. WeasyPrint lays
out HTML and CSS itself (with Pango for text), so no browser is needed in the image, the same
page gives the same PDF, and nothing is fetched: only the data URIs the page embeds are read.
Without Pango on the system, `report --format pdf` says what to install (exit 2)."""

from __future__ import annotations

import logging
from typing import Any

from scheduler.errors import BadInputError

INSTALL = "apt-get install libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core"


def _weasyprint() -> tuple[Any, Any]:
    """WeasyPrint's HTML and URLFetcher (URLFetcher from WeasyPrint 68): every import of it
    here, so that a missing piece, like a missing Pango, is a message and exit 2."""
    # Its progress steps (some at import) are INFO lines an operator has no use for; its
    # warnings stay.
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
    try:
        from weasyprint import HTML
        from weasyprint.urls import URLFetcher
    except (ImportError, OSError) as exc:  # OSError: the system's Pango could not be loaded
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInputError(
            f"PDF reports need WeasyPrint 68 or later and the system's Pango ({INSTALL}); "
            f"or use --format html ({first})"
        ) from exc
    return HTML, URLFetcher


def render_pdf(html: str) -> bytes:
    page, fetcher_of = _weasyprint()
    # data: URIs only (the logo): a report fetches nothing from the network or the disk.
    fetcher = fetcher_of(allowed_protocols={"data"})
    pdf: bytes = page(string=html, url_fetcher=fetcher).write_pdf()
    return pdf
