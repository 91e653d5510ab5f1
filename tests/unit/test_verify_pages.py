"""Comparing a page before and after an update (scheduler.actions.pages): title, size, structure
and answer time, pure functions over text and times; and the `verify:` options that tune it,
refused with the field named when wrong."""

from __future__ import annotations

import pytest

from scheduler.actions import pages
from scheduler.actions.pages import Facts, Limits, compare, facts, similarity
from scheduler.actions.verify import VerifyOptions
from scheduler.config import parse
from scheduler.errors import ConfigError
from scheduler.sandbox.wordpress import changed_page, healthy_page

URL = "acme.example/"


def page(body: str, *times_s: float) -> Facts:
    return facts(body, len(body.encode()), times_s)


def by_name(before: Facts, after: Facts, limits: Limits | None = None) -> dict[str, pages.Check]:
    return {c.name: c for c in compare(URL, before, after, limits or Limits())}


# --- reading a page ------------------------------------------------------------------------------


def test_the_title_is_read_with_its_entities_and_whitespace_tidied() -> None:
    found = page("<html><head><title>\n  Caf&eacute; &amp;\tBar </title></head></html>")
    assert found.title == "Café & Bar"
    assert page("<html><body><p>no title</p></body></html>").title is None
    svg = "<svg><title>icon</title></svg><title>Real</title>"
    assert page(svg).title == "Real"  # an SVG's title is not the page's


def test_tags_are_counted_without_scripts_styles_metadata_or_drawings() -> None:
    body = (
        "<html><head><meta charset=utf-8><link rel=stylesheet href=x.css><style>p{}</style>"
        "<script>var a = '<div>';</script></head><body><div><p>a</p><p>b<br></p>"
        '<svg viewBox="0 0 1 1"><path d="M0"/><g><circle r="1"/></g></svg></div></body></html>'
    )
    assert page(body).tags == {"html": 1, "head": 1, "body": 1, "div": 1, "p": 2, "br": 1,
                               "svg": 1}  # fmt: skip


def test_broken_html_is_read_without_failing() -> None:
    for body in ("<div><p>unclosed", "</p></div>", "<<<>>>", "<title>never closed", "\x00<a"):
        found = page(body)
        assert isinstance(found.tags, dict)
    assert page("<title>never closed").title == "never closed"


def test_the_answer_time_is_the_median_of_the_samples() -> None:
    assert page("<p>x</p>", 0.3, 0.01, 0.012).elapsed_s == 0.012
    assert page("<p>x</p>").elapsed_s is None


def test_similarity_is_the_overlap_of_the_tag_counts() -> None:
    assert similarity({"p": 3, "div": 1}, {"p": 3, "div": 1}) == 1.0
    assert similarity({}, {}) == 1.0
    assert similarity({"p": 2}, {"div": 2}) == 0.0
    assert similarity({"p": 3, "div": 1}, {"p": 1, "div": 1}) == 2 / 4


# --- the comparisons -----------------------------------------------------------------------------


def test_the_same_page_with_other_words_passes_every_comparison() -> None:
    before = page(healthy_page("Acme", "/"), 0.2, 0.21, 0.19)
    after = page(healthy_page("Acme", "/a-slightly-longer-path/"), 0.25, 0.2, 0.22)
    checks = by_name(before, after)
    assert list(checks) == ["title", "size", "structure", "response_time"]
    assert all(c.ok for c in checks.values()), checks
    assert checks["structure"].detail == "tag similarity 1.00"
    assert all(c.url == URL for c in checks.values())


def test_the_sandboxs_changed_page_fails_on_title_size_and_structure() -> None:
    before = page(healthy_page("Acme", "/"), 0.01)
    after = page(changed_page("Acme", "/"), 0.01)
    checks = by_name(before, after)
    assert [n for n, c in checks.items() if not c.ok] == ["title", "size", "structure"]
    assert checks["title"].problem() == f"{URL} title changed: 'Acme' -> 'Coming soon'"
    assert (checks["title"].before, checks["title"].after) == ("Acme", "Coming soon")
    assert checks["size"].detail.startswith("size grew ")
    assert checks["size"].detail.endswith("beyond 50% (max_size_change)")
    assert checks["structure"].detail.startswith("structure changed: tag similarity 0.")
    assert checks["response_time"].ok


@pytest.mark.parametrize(
    ("after_size", "ok"), [(1500, True), (1501, False), (500, True), (499, False), (1000, True)]
)
def test_the_size_may_change_by_the_share_given_either_way(after_size: int, ok: bool) -> None:
    before, after = Facts(None, 1000, {}, None), Facts(None, after_size, {}, None)
    assert pages.size_check(before, after, 0.5).ok is ok


def test_a_page_half_rebuilt_fails_the_structure_below_the_similarity_given() -> None:
    before = Facts("t", 100, {"div": 10, "p": 10}, None)
    after = Facts("t", 100, {"div": 10, "section": 10}, None)  # 10 shared of 30
    assert not pages.structure_check(before, after, 0.5).ok
    assert pages.structure_check(before, after, 0.3).ok
    assert pages.structure_check(before, after, 0.3).before == 20


@pytest.mark.parametrize(
    ("before_s", "after_s", "ok"),
    [
        (0.2, 1.0, True),  # exactly 5x: not beyond
        (0.2, 1.01, False),
        (0.001, 0.04, True),  # 40x, but 39 ms slower: loopback jitter, under the floor
        (0.01, 0.1, False),  # 10x and 90 ms slower
        (0.0, 0.0, True),
        (0.5, 0.1, True),  # faster
    ],
)
def test_a_page_fails_only_when_both_times_slower_and_slower_by_the_floor(
    before_s: float, after_s: float, ok: bool
) -> None:
    check = pages.time_check(Facts(None, 1, {}, before_s), Facts(None, 1, {}, after_s), Limits())
    assert check is not None and check.ok is ok
    if not ok:
        assert "beyond 5x (max_slowdown)" in check.detail


def test_no_time_is_compared_when_either_side_was_not_measured() -> None:
    assert pages.time_check(Facts(None, 1, {}, None), Facts(None, 1, {}, 0.1), Limits()) is None
    before, after = page("<p>a</p>"), page("<p>a</p>", 5.0)
    assert "response_time" not in by_name(before, after)


def test_only_the_comparisons_asked_for_are_made() -> None:
    before = page(healthy_page("Acme", "/"), 0.01)
    after = page(changed_page("Acme", "/"), 0.5)
    assert list(by_name(before, after, Limits(compare=("title",)))) == ["title"]
    assert by_name(before, after, Limits(compare=())) == {}


# --- the options ---------------------------------------------------------------------------------


def test_the_options_read_percentages_factors_durations_and_comparisons() -> None:
    options = VerifyOptions.model_validate(
        {
            "max_size_change": "120%",
            "max_slowdown": "8x",
            "slowdown_floor": "200ms",
            "min_structure_similarity": 0.7,
            "compare": ["response_time", "title"],
        }
    )
    assert options.limits() == Limits(("title", "response_time"), 1.2, 0.7, 8.0, 0.2)
    assert VerifyOptions().limits() == Limits()
    assert VerifyOptions.model_validate({"compare": False}).compare == ()
    assert VerifyOptions.model_validate({"compare": True}).compare == pages.COMPARISONS
    assert VerifyOptions.model_validate({"max_slowdown": 2.5}).max_slowdown == 2.5


def problems(verify: str) -> list[str]:
    text = (
        "version: 1\njobs:\n  - id: x\n    actions:\n"
        f"      - update_plugins: {{safe: true, verify: {verify}}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse(text, "jobs.yaml", {})
    return [str(p) for p in caught.value.problems]


FIELD = "jobs.yaml:5: job 'x': actions.0.update_plugins.verify"


@pytest.mark.parametrize(
    ("verify", "problem"),
    [
        ("{max_size_change: 0.5}", 'max_size_change: give a percentage such as "50%", not 0.5'),
        ("{max_size_change: 0%}", "max_size_change: a percentage must be above 0%"),
        ("{max_size_change: lots}", 'max_size_change: give a percentage such as "50%"'),
        ("{max_slowdown: 1}", "max_slowdown: a factor must be above 1 and at most 1000"),
        ("{max_slowdown: slow}", "max_slowdown: give a factor such as 5 (five times slower)"),
        ("{max_slowdown: .inf}", "max_slowdown: give a factor such as 5"),
        ("{max_slowdown: true}", "max_slowdown: give a factor such as 5"),
        ("{slowdown_floor: soon}", "slowdown_floor: 'soon' is not a duration"),
        ("{min_structure_similarity: 1.5}", "min_structure_similarity: Input should be less"),
        ("{min_structure_similarity: yes}", "min_structure_similarity: give a number from 0 to 1"),
        ("{compare: [title, looks]}", "compare: unknown comparison 'looks': use any of title,"),
        ("{compare: yes please}", "compare: give true, false or a list of: title, size"),
        ("{max_size_change: 50%, colour: red}", "colour: unknown key"),
    ],
)
def test_a_bad_option_is_refused_naming_its_field(verify: str, problem: str) -> None:
    found = problems(verify)
    assert any(p.startswith(f"{FIELD}.{problem}") for p in found), found
