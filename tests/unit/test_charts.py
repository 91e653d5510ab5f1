"""Inline SVG charts: well-formed, escaped, and the numbers readable back from the markup."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from scheduler import charts

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it is well formed


def test_bars_carry_every_value_and_escape_labels() -> None:
    svg = charts.bars(
        "Updates <per> week",
        ["W45", "W46 & co"],
        [charts.Series("plugins", [3, 0]), charts.Series("themes", [1, 2.5])],
    )
    root = _parse(svg)
    values = {
        (r.get("data-label"), r.get("data-series")): r.get("data-value")
        for r in root.iter(f"{SVG}rect")
        if r.get("data-series")
    }
    assert values == {
        ("W45", "plugins"): "3",
        ("W45", "themes"): "1",
        ("W46 & co", "plugins"): "0",
        ("W46 & co", "themes"): "2.5",
    }
    assert root.get("aria-label") == "Updates <per> week"


def test_stacked_bars_stack_and_side_by_side_do_not() -> None:
    def heights(stacked: bool) -> list[float]:
        root = _parse(
            charts.bars(
                "t", ["a"], [charts.Series("x", [2]), charts.Series("y", [2])], stacked=stacked
            )
        )
        rects = [r for r in root.iter(f"{SVG}rect") if r.get("data-series")]
        return [float(r.get("y", "0")) for r in rects]

    stacked_y = heights(True)
    assert stacked_y[1] < stacked_y[0]  # the second bar sits on the first
    side_y = heights(False)
    assert side_y[0] == side_y[1]


def test_line_has_a_limit_and_one_point_per_label() -> None:
    svg = charts.line("Requests per minute", ["10:00", "10:01", "10:02"], [50, 120, 80], limit=120)
    root = _parse(svg)
    points = [c.get("data-value") for c in root.iter(f"{SVG}circle")]
    assert points == ["50", "120", "80"]
    limit = [ln for ln in root.iter(f"{SVG}line") if ln.get("class") == "limit"]
    assert [ln.get("data-value") for ln in limit] == ["120"]


def test_empty_data_still_draws_a_chart() -> None:
    _parse(charts.bars("nothing", [], []))
    _parse(charts.line("nothing", [], []))


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="values"):
        charts.bars("t", ["a", "b"], [charts.Series("x", [1])])
    with pytest.raises(ValueError, match="labels"):
        charts.line("t", ["a"], [1, 2])


@pytest.mark.parametrize(
    ("peak", "top", "step"),
    [
        (0, 1, 0.2),
        (7, 8, 2),
        (23, 25, 5),
        (120, 150, 50),
        (1.2, 1.5, 0.5),
        (45, 50, 10),
        (263, 300, 100),
        (600, 600, 200),
        (1, 1, 0.2),
    ],
)
def test_axis_tops_and_steps_are_round(peak: float, top: float, step: float) -> None:
    assert charts._nice_top(peak) == pytest.approx(top)
    assert charts._nice_step(top) == pytest.approx(step)


def test_the_axis_labels_are_round_numbers() -> None:
    root = _parse(charts.bars("t", ["a"], [charts.Series("x", [23])]))
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert labels == ["0", "5", "10", "15", "20", "25"]
