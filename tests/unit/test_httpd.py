"""The route table: exact paths, {name} segments, 404 and 405."""

from __future__ import annotations

import pytest

from scheduler.httpd import Request, Response, Routes


def _get(path: str, query: str = "") -> Request:
    return Request("GET", path, query, {})


def _echo(request: Request) -> Response:
    return Response.json(200, dict(request.params))


def test_a_parameter_segment_reaches_the_handler() -> None:
    routes = Routes().add("GET", "/runs/{run_id}", _echo)
    response = routes.dispatch(_get("/runs/42"))
    assert (response.status, response.body) == (200, b'{"run_id": "42"}')


def test_an_exact_path_wins_over_a_pattern() -> None:
    routes = Routes().add("GET", "/runs/{run_id}", _echo)
    routes.add("GET", "/runs/latest", lambda _r: Response.text(200, "exact"))
    assert routes.dispatch(_get("/runs/latest")).body == b"exact\n"
    assert routes.match("/runs/7") == ("/runs/{run_id}", {"run_id": "7"})


@pytest.mark.parametrize("path", ["/runs/", "/runs", "/runs/1/x", "/jobs/1"])
def test_a_pattern_matches_exactly_one_non_empty_segment(path: str) -> None:
    routes = Routes().add("GET", "/runs/{run_id}", _echo)
    assert routes.dispatch(_get(path)).status == 404


def test_another_method_on_a_pattern_is_405() -> None:
    routes = Routes().add("GET", "/runs/{run_id}", _echo)
    response = routes.dispatch(Request("POST", "/runs/1", "", {}))
    assert (response.status, response.headers["Allow"]) == (405, "GET")


@pytest.mark.parametrize("path", ["/x/{1a}", "/x/{a}/{a}"])
def test_bad_parameter_names_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="bad parameters"):
        Routes().add("GET", path, _echo)


def test_query_arguments_keep_the_last_of_each_name() -> None:
    assert _get("/", "a=1&a=2&b=&c=x%20y").arguments() == {"a": "2", "b": "", "c": "x y"}
