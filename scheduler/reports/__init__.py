"""Client reports (`kinsta-scheduler report`): what the period brought each site (updates with
versions before and after, backups, verifications, rollbacks, releases held back, PHP and
WordPress at the start and end), a fleet summary and charts; as JSON, HTML or PDF.

    gather.py    the report from history: a few set-based reads for every site at once
    extract.py   what one task says (pure, from what its action recorded)
    model.py     the report as values
    document.py  the JSON document (a contract: README "Client reports")
    html.py      one self-contained page (Jinja2, inline SVG charts, the logo as a data URI)
    pdf.py       the same page as a PDF (WeasyPrint: the only module that imports it)
"""

from __future__ import annotations

from scheduler.reports.document import to_document
from scheduler.reports.gather import Selection, gather
from scheduler.reports.html import render_html
from scheduler.reports.model import Report

__all__ = ["Report", "Selection", "gather", "render_html", "to_document"]
