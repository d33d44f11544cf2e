"""Unit tests of squall.routing: API Gateway HTTP API route selection."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.routing import MethodNotAllowed, Route, RouteMatch, RouteTable


def table(*keys: str) -> RouteTable:
    return RouteTable(Route.from_key(key, target=key) for key in keys)


def target(result: RouteMatch | MethodNotAllowed | None) -> str:
    assert isinstance(result, RouteMatch), result
    return str(result.route.target)


# ---------------------------------------------------------------- route keys


def test_from_key_splits_method_and_path() -> None:
    route = Route.from_key("get /pets/{id}", target="fn", auth={"type": "api_key"})
    assert route == Route("get /pets/{id}", "GET", "/pets/{id}", "fn", {"type": "api_key"})


def test_from_key_default_route() -> None:
    route = Route.from_key("$default", target="fn")
    assert route.is_default and route.method == "ANY"


@pytest.mark.parametrize("key", ["GET", "/pets", ""])
def test_from_key_rejects_malformed_keys(key: str) -> None:
    with pytest.raises(ValueError, match="METHOD /path"):
        Route.from_key(key, target=None)


@pytest.mark.parametrize("path, error", [
    ("pets", "must start with '/'"),
    ("/pets//x", "empty segment"),
    ("/pets/", "empty segment"),
    ("/{proxy+}/x", "must be the last segment"),
    ("/pets/{id", "not a valid"),
    ("/pets/x{id}", "not a valid"),
    ("/{a}/{a}", "repeats a parameter name"),
])
def test_invalid_paths_are_rejected(path: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        table(f"GET {path}")


def test_invalid_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="not an HTTP method"):
        RouteTable([Route("G-T /x", "G-T", "/x", None)])


@pytest.mark.parametrize("keys", [
    ("GET /pets", "GET /pets"),
    ("GET /pets/{id}", "GET /pets/{petId}"),
    ("ANY /files/{a+}", "ANY /files/{b+}"),
    ("$default", "$default"),
])
def test_duplicates_are_rejected(keys: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="duplicate route"):
        table(*keys)


def test_same_path_different_methods_or_kinds_are_not_duplicates() -> None:
    routes = table("GET /pets/{id}", "POST /pets/{id}", "ANY /pets/{id}", "GET /pets/{p+}")
    assert [r.route_key for r in routes.routes()] == [
        "GET /pets/{id}", "POST /pets/{id}", "ANY /pets/{id}", "GET /pets/{p+}"]


# ------------------------------------------------------------------ priority


def test_literal_beats_parameter_beats_greedy() -> None:
    routes = table("GET /{proxy+}", "GET /pets/{id}", "GET /pets/dog", "GET /pets/{p+}")
    assert target(routes.match("GET", "/pets/dog")) == "GET /pets/dog"
    assert target(routes.match("GET", "/pets/cat")) == "GET /pets/{id}"
    assert target(routes.match("GET", "/pets/cat/toys")) == "GET /pets/{p+}"
    assert target(routes.match("GET", "/shop/cart")) == "GET /{proxy+}"


def test_longer_literal_prefix_wins() -> None:
    routes = table("GET /{a}/b/c", "GET /a/{b}/c", "GET /a/b/{c}", "GET /a/{rest+}")
    assert target(routes.match("GET", "/a/b/c")) == "GET /a/b/{c}"
    assert target(routes.match("GET", "/a/x/c")) == "GET /a/{b}/c"
    assert target(routes.match("GET", "/x/b/c")) == "GET /{a}/b/c"
    assert target(routes.match("GET", "/a/x/y")) == "GET /a/{rest+}"


def test_order_of_declaration_does_not_matter() -> None:
    keys = ["GET /pets/{p+}", "GET /pets/{id}", "GET /pets/dog", "$default"]
    for order in (keys, keys[::-1]):
        routes = table(*order)
        assert target(routes.match("GET", "/pets/dog")) == "GET /pets/dog"
        assert target(routes.match("GET", "/pets/1")) == "GET /pets/{id}"


def test_specific_method_beats_any_for_the_same_path() -> None:
    routes = table("ANY /pets", "GET /pets", "ANY /pets/{id}", "DELETE /pets/{id}")
    assert target(routes.match("GET", "/pets")) == "GET /pets"
    assert target(routes.match("POST", "/pets")) == "ANY /pets"
    assert target(routes.match("DELETE", "/pets/1")) == "DELETE /pets/{id}"
    assert target(routes.match("PATCH", "/pets/1")) == "ANY /pets/{id}"


def test_path_specificity_comes_before_method() -> None:
    routes = table("ANY /pets/dog", "GET /pets/{id}")
    assert target(routes.match("GET", "/pets/dog")) == "ANY /pets/dog"


def test_less_specific_path_takes_a_method_the_specific_one_lacks() -> None:
    routes = table("GET /pets/{id}", "POST /pets/{rest+}")
    assert target(routes.match("POST", "/pets/1")) == "POST /pets/{rest+}"


def test_default_only_when_nothing_else_matches() -> None:
    routes = table("GET /pets", "$default")
    assert target(routes.match("GET", "/pets")) == "GET /pets"
    assert target(routes.match("POST", "/pets")) == "$default"
    assert target(routes.match("PATCH", "/anything/at/all")) == "$default"
    assert routes.match("GET", "/") == RouteMatch(Route.from_key("$default", "$default"), {})


def test_no_match_is_none() -> None:
    assert table("GET /pets").match("GET", "/cats") is None
    assert table().match("GET", "/") is None


def test_wrong_method_is_method_not_allowed_with_sorted_methods() -> None:
    routes = table("POST /pets/{id}", "GET /pets/{id}", "PUT /pets/dog", "DELETE /{p+}")
    assert routes.match("PATCH", "/pets/dog") == MethodNotAllowed(("DELETE", "GET", "POST", "PUT"))
    assert routes.match("PATCH", "/pets/cat") == MethodNotAllowed(("DELETE", "GET", "POST"))


def test_head_matches_only_head_or_any() -> None:
    assert table("GET /pets").match("HEAD", "/pets") == MethodNotAllowed(("GET",))
    assert target(table("GET /pets", "ANY /pets").match("HEAD", "/pets")) == "ANY /pets"
    assert target(table("HEAD /pets").match("head", "/pets")) == "HEAD /pets"


def test_root_path() -> None:
    routes = table("GET /", "GET /{proxy+}")
    assert target(routes.match("GET", "/")) == "GET /"
    assert target(routes.match("GET", "/x")) == "GET /{proxy+}"


def test_trailing_slash_and_empty_segments_do_not_match() -> None:
    routes = table("GET /pets", "GET /pets/{id}")
    assert routes.match("GET", "/pets/") is None
    assert routes.match("GET", "//pets") is None


# ---------------------------------------------------------- path parameters


def test_parameters_are_returned_by_name() -> None:
    result = table("GET /users/{user}/posts/{post}").match("GET", "/users/ann/posts/42")
    assert result == RouteMatch(Route.from_key("GET /users/{user}/posts/{post}",
                                               "GET /users/{user}/posts/{post}"),
                                {"user": "ann", "post": "42"})


def test_greedy_value_is_the_rest_of_the_path() -> None:
    result = table("GET /files/{path+}").match("GET", "/files/a/b%20c/d.txt")
    assert isinstance(result, RouteMatch)
    assert result.path_parameters == {"path": "a/b c/d.txt"}
    assert table("GET /files/{path+}").match("GET", "/files") is None


def test_percent_encoded_parameters_are_decoded() -> None:
    result = table("GET /tags/{tag}").match("GET", "/tags/caf%C3%A9%20%2F%25")
    assert isinstance(result, RouteMatch)
    assert result.path_parameters == {"tag": "café /%"}


def test_encoded_slash_does_not_split_a_segment() -> None:
    routes = table("GET /a/b", "GET /{x}")
    assert target(routes.match("GET", "/a%2Fb")) == "GET /{x}"


def test_literals_match_any_percent_encoding_of_themselves() -> None:
    routes = table("GET /café/menu", "GET /100%/x")
    assert target(routes.match("GET", "/caf%C3%A9/m%65nu")) == "GET /café/menu"
    assert target(routes.match("GET", "/100%25/x")) == "GET /100%/x"


segment_text = st.text(min_size=1, max_size=30)


@given(value=segment_text, other=segment_text)
def test_any_quoted_parameter_value_comes_back_decoded(value: str, other: str) -> None:
    routes = table("GET /items/{id}/notes/{note}")
    path = f"/items/{quote(value, safe='')}/notes/{quote(other, safe='')}"
    result = routes.match("GET", path)
    assert isinstance(result, RouteMatch)
    assert result.path_parameters == {"id": value, "note": other}


@given(parts=st.lists(segment_text.filter(lambda s: "/" not in s), min_size=1, max_size=5))
def test_any_quoted_greedy_value_comes_back_decoded(parts: list[str]) -> None:
    path = "/static/" + "/".join(quote(part, safe="") for part in parts)
    result = table("GET /static/{file+}").match("GET", path)
    assert isinstance(result, RouteMatch)
    assert result.path_parameters == {"file": "/".join(parts)}


# ------------------------------------------- model test: a naive reference


def reference_match(keys: list[str], method: str, path: str) -> str | tuple[str, ...] | None:
    """Try every route segment by segment; the most specific accepting one wins."""
    kind = {"{x}": 1, "{y}": 1, "{p+}": 2}
    fits: list[tuple[tuple[int, ...], bool, str]] = []
    wrong_method: set[str] = set()
    got = path.split("/")[1:]
    for key in keys:
        if key == "$default":
            continue
        verb, route_path = key.split(" ")
        want = route_path.split("/")[1:]
        if want[-1] == "{p+}":
            ok = len(got) >= len(want) and all(
                w == g or w in kind for w, g in zip(want[:-1], got))
        else:
            ok = len(got) == len(want) and all(w == g or w in kind for w, g in zip(want, got))
        if not ok:
            continue
        if verb in (method, "ANY"):
            fits.append((tuple(kind.get(w, 0) for w in want), verb == "ANY", key))
        else:
            wrong_method.add(verb)
    if fits:
        return min(fits)[2]
    if "$default" in keys:
        return "$default"
    return tuple(sorted(wrong_method)) or None


route_keys = st.lists(
    st.builds(lambda verb, segs: f"{verb} /" + "/".join(segs),
              st.sampled_from(["GET", "POST", "ANY"]),
              st.lists(st.sampled_from(["a", "b", "{x}", "{y}"]), min_size=1, max_size=3)
              .map(lambda segs: segs[:-1] + ["{p+}"] if segs[-1] == "{y}" else segs))
    | st.just("$default"),
    max_size=10,
    unique_by=lambda key: key.replace("{y}", "{x}"))


@given(keys=route_keys,
       method=st.sampled_from(["GET", "POST", "PUT"]),
       path=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4)
       .map(lambda segs: "/" + "/".join(segs)))
def test_matches_a_naive_reference(keys: list[str], method: str, path: str) -> None:
    try:
        routes = table(*keys)
    except ValueError:
        return  # a duplicate (same method, same shape); rejected on purpose
    expected = reference_match(keys, method, path)
    result = routes.match(method, path)
    if isinstance(result, RouteMatch):
        assert result.route.route_key == expected
    elif isinstance(result, MethodNotAllowed):
        assert result.allowed == expected
    else:
        assert expected is None
