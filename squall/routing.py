"""Route matching the way API Gateway HTTP APIs do it.

A route is `METHOD /path` (method may be `ANY`, the path may hold `{param}`
segments and one trailing greedy `{name+}` segment) or the `$default` route.
`RouteTable.match(method, path)` picks the most specific route:

1. The path decides first. Paths are compared segment by segment from the
   left; at the first segment where two routes differ, a literal beats a
   `{param}`, which beats a greedy `{name+}`. So a longer literal prefix wins.
2. For the same path, a route with the request's method beats `ANY`.
   HEAD matches only `HEAD` and `ANY` routes (as in API Gateway, no GET
   fallback).
3. If no path accepts the method, `$default` takes the request (any method).
4. Otherwise the answer is `MethodNotAllowed` when some path matched with
   other methods, or `None` (404) when nothing matched at all.

Paths are matched on their percent-decoded segments (`/caf%C3%A9` matches a
`/café` route, `%2F` never splits a segment) and path parameter values are
returned decoded; a greedy value is the rest of the path without its leading
slash. Segments must be non-empty: `/pets/` does not match `/pets`.

All compilation happens in `RouteTable.__init__`: literal paths go into a dict,
parametrized paths become one regex per distinct path shape, tried in priority
order (only the shapes whose first literal segment fits the request). The same table serves the HTTP server and `squall.testing`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import quote, unquote

DEFAULT_ROUTE_KEY = "$default"
ANY = "ANY"

_SEGMENT_SAFE = "!$&'()*+,;=:@"
"""RFC 3986 pchar characters (besides unreserved ones) left unencoded in a segment."""
_ALREADY_CANONICAL = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/]*")
_PARAM = re.compile(r"\{([A-Za-z0-9_.:-]+)(\+?)\}")
_METHOD = re.compile(r"[A-Z]+")
_LITERAL, _VARIABLE, _GREEDY = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Route:
    """One route: `route_key` is `"GET /pets/{id}"` or `"$default"`.

    `target` and `auth` are opaque to the router and handed back on a match.
    """

    route_key: str
    method: str
    path: str
    target: Any
    auth: Any = None

    @classmethod
    def from_key(cls, route_key: str, target: Any, auth: Any = None) -> Route:
        """Build a route from its key alone: `"POST /pets"`, `"ANY /{proxy+}"`, `"$default"`."""
        if route_key == DEFAULT_ROUTE_KEY:
            return cls(route_key, ANY, DEFAULT_ROUTE_KEY, target, auth)
        method, _, path = route_key.partition(" ")
        if not path:
            raise ValueError(f"route key {route_key!r} must read 'METHOD /path' or '$default'")
        return cls(route_key, method.upper(), path, target, auth)

    @property
    def is_default(self) -> bool:
        return self.route_key == DEFAULT_ROUTE_KEY


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The route chosen for a request and its decoded path parameters."""

    route: Route
    path_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MethodNotAllowed:
    """Some route has this path, but none accepts the method (HTTP 405)."""

    allowed: tuple[str, ...]


@dataclass(slots=True)
class _Shape:
    """All routes sharing one parametrized path shape, e.g. `/pets/{}`."""

    regex: re.Pattern[str]
    names: tuple[str, ...]
    sort_key: tuple[int, ...]
    first_literal: str | None
    by_method: dict[str, Route]


def canonical_segment(segment: str) -> str:
    """Percent-decode a segment, then re-encode it one fixed way (`/` becomes `%2F`)."""
    return quote(unquote(segment), safe=_SEGMENT_SAFE)


def canonical_path(raw_path: str) -> str:
    """The form both route paths and request paths are compared in."""
    if _ALREADY_CANONICAL.fullmatch(raw_path):
        return raw_path
    segments = raw_path.split("/")
    return "/".join(canonical_segment(s) for s in segments)


def _segment_kinds(path: str) -> list[tuple[int, str]]:
    """Split a route path into (kind, literal-or-name) pairs; validate it."""
    if not path.startswith("/"):
        raise ValueError(f"route path {path!r} must start with '/'")
    if path == "/":
        return []
    parts = path[1:].split("/")
    kinds: list[tuple[int, str]] = []
    for index, part in enumerate(parts):
        if not part:
            raise ValueError(f"route path {path!r} has an empty segment")
        param = _PARAM.fullmatch(part)
        if param is None:
            if "{" in part or "}" in part:
                raise ValueError(f"route path {path!r}: {part!r} is not a valid '{{name}}' segment")
            kinds.append((_LITERAL, part))
        elif param.group(2):
            if index != len(parts) - 1:
                raise ValueError(f"route path {path!r}: a greedy '{{{param.group(1)}+}}' "
                                 "must be the last segment")
            kinds.append((_GREEDY, param.group(1)))
        else:
            kinds.append((_VARIABLE, param.group(1)))
    names = [name for kind, name in kinds if kind != _LITERAL]
    if len(names) != len(set(names)):
        raise ValueError(f"route path {path!r} repeats a parameter name")
    return kinds


def _shape_of(kinds: list[tuple[int, str]]) -> str:
    """The path with parameter names erased: `/pets/{}`, `/files/{+}`."""
    text = {_VARIABLE: "{}", _GREEDY: "{+}"}
    return "/" + "/".join(text.get(kind, canonical_segment(value)) for kind, value in kinds)


def _regex_of(kinds: list[tuple[int, str]]) -> re.Pattern[str]:
    pieces = {_VARIABLE: "/([^/]+)", _GREEDY: "/(.+)"}
    body = "".join(pieces.get(kind, "/" + re.escape(canonical_segment(value)))
                   for kind, value in kinds)
    return re.compile(body)


def _check_method(route: Route) -> str:
    method = route.method.upper()
    if not _METHOD.fullmatch(method):
        raise ValueError(f"route {route.route_key!r}: {route.method!r} is not an HTTP method")
    return method


class RouteTable:
    """An immutable set of routes, compiled once for fast matching."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._routes = list(routes)
        self._default: Route | None = None
        self._static: dict[str, dict[str, Route]] = {}
        shapes: dict[str, _Shape] = {}
        for route in self._routes:
            if route.is_default:
                self._add_default(route)
            else:
                self._add(route, shapes)
        self._by_first_literal: dict[str, list[_Shape]] = {}
        self._variable_first: list[_Shape] = []
        for shape in sorted(shapes.values(), key=lambda shape: shape.sort_key):
            if shape.first_literal is None:
                self._variable_first.append(shape)
            else:
                self._by_first_literal.setdefault(shape.first_literal, []).append(shape)

    def _add_default(self, route: Route) -> None:
        if self._default is not None:
            raise ValueError("duplicate route: '$default' is declared twice")
        self._default = route

    def _add(self, route: Route, shapes: dict[str, _Shape]) -> None:
        method = _check_method(route)
        kinds = _segment_kinds(route.path)
        shape_text = _shape_of(kinds)
        if all(kind == _LITERAL for kind, _ in kinds):
            by_method = self._static.setdefault(shape_text, {})
        else:
            shape = shapes.get(shape_text)
            if shape is None:
                shape = shapes[shape_text] = _Shape(
                    regex=_regex_of(kinds),
                    names=tuple(name for kind, name in kinds if kind != _LITERAL),
                    sort_key=tuple(kind for kind, _ in kinds),
                    first_literal=canonical_segment(kinds[0][1]) if kinds[0][0] == _LITERAL
                    else None,
                    by_method={})
            by_method = shape.by_method
        if method in by_method:
            raise ValueError(f"duplicate route: {route.route_key!r} has the same method and "
                             f"path as {by_method[method].route_key!r}")
        by_method[method] = route

    def _candidates(self, canonical: str) -> list[_Shape]:
        """Shapes that may match, most specific first.

        Shapes starting with a literal segment only need trying when the
        request's first segment is that literal; they all outrank shapes
        starting with a parameter, so they come first.
        """
        first = canonical[1:].split("/", 1)[0]
        return self._by_first_literal.get(first, []) + self._variable_first

    def routes(self) -> list[Route]:
        """The routes in the order they were given."""
        return list(self._routes)

    def match(self, method: str, path: str) -> RouteMatch | MethodNotAllowed | None:
        """Route `method` on `path` (raw, percent-encoded, without query).

        Returns the match, `MethodNotAllowed` (405) or `None` (404).
        """
        method = method.upper()
        canonical = canonical_path(path)
        allowed: set[str] = set()
        by_method = self._static.get(canonical)
        if by_method is not None:
            route = by_method.get(method) or by_method.get(ANY)
            if route is not None:
                return RouteMatch(route, {})
            allowed.update(by_method)
        for shape in self._candidates(canonical):
            found = shape.regex.fullmatch(canonical)
            if found is None:
                continue
            route = shape.by_method.get(method) or shape.by_method.get(ANY)
            if route is not None:
                values = (unquote(value) for value in found.groups())
                return RouteMatch(route, dict(zip(shape.names, values)))
            allowed.update(shape.by_method)
        if self._default is not None:
            return RouteMatch(self._default, {})
        return MethodNotAllowed(tuple(sorted(allowed))) if allowed else None
