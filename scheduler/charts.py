"""Charts as inline SVG, for the dashboard's pages and the client reports.

Pure functions from numbers to an SVG string: no JavaScript, no fonts or files fetched, so a
chart renders the same in a browser, in an e-mailed HTML report and in WeasyPrint's PDF. Every
text is escaped here; every bar and point carries `data-label`, `data-series` and `data-value`
so a test (or a screen reader's table) can read the numbers back from the page.

Two shapes cover what the pages show: `bars` (one group per label, series stacked or side by
side: updates per week, outcomes per action) and `line` (one series over time against an
optional limit: requests per minute against the company's budget)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Colours that stay apart for the common kinds of colour blindness (Okabe and Ito's palette).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 44, 12, 28, 40


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    colour: str | None = None  # None: the palette's next colour


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _number(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def _nice_step(value: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) that reaches value in at most five."""

    if value <= 0:
        return 0.2  # an empty chart: 0 to 1 in fifths
    power = 10.0 ** math.floor(math.log10(value / 5))
    for step in (1, 2, 5, 10):
        if step * power * 5 >= value * (1 - 1e-9):
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def _nice_top(value: float) -> float:
    """The axis top: the first multiple of the round step at or above value."""

    step = _nice_step(value)
    return 1.0 if value <= 0 else step * math.ceil(value / step - 1e-9)


def _frame(title: str, width: int, height: int, body: list[str]) -> str:
    label = _attr(title)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{label}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">'
    )
    caption = (
        f'<text x="{_PAD_LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>'
    )
    return "".join([head, f"<title>{escape(title)}</title>", caption, *body, "</svg>"])


def _axis(top: float, width: int, height: int, unit: str) -> list[str]:
    """The y axis: a grid line at each round step up to the top, with its value."""

    parts = []
    plot_h = height - _PAD_TOP - _PAD_BOTTOM
    step = _nice_step(top)
    count = max(round(top / step), 1)
    for i in range(count + 1):
        value = step * i
        y = _PAD_TOP + plot_h - plot_h * i / count
        parts.append(
            f'<line x1="{_PAD_LEFT}" x2="{width - _PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{_PAD_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">'
            f"{escape(_number(round(value, 6)))}{escape(unit)}</text>"
        )
    return parts


def _legend(series: Sequence[Series], colours: Sequence[str], width: int, height: int) -> list[str]:
    parts, x = [], float(_PAD_LEFT)
    for one, colour in zip(series, colours, strict=True):
        parts.append(
            f'<rect x="{x:.1f}" y="{height - 12}" width="10" height="10" fill="{_attr(colour)}"/>'
            f'<text x="{x + 14:.1f}" y="{height - 3}">{escape(one.name)}</text>'
        )
        x += 24 + 7 * len(one.name)
        if x > width - 40:
            break
    return parts


def _colours(series: Sequence[Series]) -> list[str]:
    return [one.colour or PALETTE[i % len(PALETTE)] for i, one in enumerate(series)]


def bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool = True,
    unit: str = "",
    width: int = 640,
    height: int = 220,
) -> str:
    """A bar chart: one group per label, each series a bar (stacked, or side by side)."""

    for one in series:
        if len(one.values) != len(labels):
            raise ValueError(f"series {one.name!r} has {len(one.values)} values for {len(labels)}")
    colours = _colours(series)
    if stacked:
        peak = max((sum(s.values[i] for s in series) for i in range(len(labels))), default=0)
    else:
        peak = max((v for s in series for v in s.values), default=0)
    top = _nice_top(peak)
    plot_w, plot_h = width - _PAD_LEFT - _PAD_RIGHT, height - _PAD_TOP - _PAD_BOTTOM
    slot = plot_w / max(len(labels), 1)
    bar_w = slot * 0.7 / (1 if stacked else max(len(series), 1))
    body = _axis(top, width, height, unit)
    for i, label in enumerate(labels):
        x0, base = _PAD_LEFT + slot * i + slot * 0.15, 0.0
        for k, (one, colour) in enumerate(zip(series, colours, strict=True)):
            value = one.values[i]
            h = plot_h * value / top
            x = x0 if stacked else x0 + bar_w * k
            y = _PAD_TOP + plot_h - h - (plot_h * base / top if stacked else 0)
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{_attr(colour)}" data-label="{_attr(label)}" '
                f'data-series="{_attr(one.name)}" data-value="{_attr(_number(value))}">'
                f"<title>{escape(f'{label} · {one.name}: {_number(value)}{unit}')}</title></rect>"
            )
            base += value if stacked else 0
        body.append(
            f'<text x="{_PAD_LEFT + slot * (i + 0.5):.1f}" y="{height - _PAD_BOTTOM + 14}" '
            f'text-anchor="middle" fill="#333">{escape(label)}</text>'
        )
    return _frame(title, width, height, body + _legend(series, colours, width, height))


def line(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    name: str = "value",
    limit: float | None = None,
    unit: str = "",
    colour: str = PALETTE[0],
    width: int = 640,
    height: int = 220,
    every_nth_label: int = 0,
) -> str:
    """One series as a line over its labels (times, oldest first), with a dashed limit line."""

    if len(values) != len(labels):
        raise ValueError(f"{len(values)} values for {len(labels)} labels")
    top = _nice_top(max([*values, limit or 0, 0]))
    plot_w, plot_h = width - _PAD_LEFT - _PAD_RIGHT, height - _PAD_TOP - _PAD_BOTTOM
    step = plot_w / max(len(values) - 1, 1)
    nth = every_nth_label or max(1, len(labels) // 8)
    body = _axis(top, width, height, unit)
    points: list[str] = []
    marks: list[str] = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x, y = _PAD_LEFT + step * i, _PAD_TOP + plot_h - plot_h * value / top
        points.append(f"{x:.1f},{y:.1f}")
        marks.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{_attr(colour)}" '
            f'data-label="{_attr(label)}" data-series="{_attr(name)}" '
            f'data-value="{_attr(_number(value))}">'
            f"<title>{escape(f'{label}: {_number(value)}{unit}')}</title></circle>"
        )
        if i % nth == 0:
            body.append(
                f'<text x="{x:.1f}" y="{height - _PAD_BOTTOM + 14}" text-anchor="middle" '
                f'fill="#333">{escape(label)}</text>'
            )
    if points:
        body.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{_attr(colour)}" '
            'stroke-width="1.5"/>'
        )
    body.extend(marks)
    if limit is not None:
        body.append(_limit_line(limit, top, width, height, unit))
    return _frame(title, width, height, body)


def _limit_line(limit: float, top: float, width: int, height: int, unit: str) -> str:
    """A dashed horizontal line at `limit`, labelled at its right end."""
    plot_h = height - _PAD_TOP - _PAD_BOTTOM
    y = _PAD_TOP + plot_h - plot_h * limit / top
    return (
        f'<line class="limit" x1="{_PAD_LEFT}" x2="{width - _PAD_RIGHT}" y1="{y:.1f}" '
        f'y2="{y:.1f}" stroke="#D55E00" stroke-dasharray="4 3" data-value="{_number(limit)}"/>'
        f'<text x="{width - _PAD_RIGHT}" y="{y - 4:.1f}" text-anchor="end" fill="#D55E00">'
        f"limit {escape(_number(limit))}{escape(unit)}</text>"
    )
