"""The `http` trigger of squall.yaml: a route (`- http: "POST /hooks/{name}"`) and its `auth`.

Routes are checked as API Gateway HTTP APIs take them and stored normalized (method upper
case); `HttpTrigger.shape` erases parameter names, so that `GET /a/{x}` and `GET /a/{y}` are
seen as one route. Requests are matched to routes by squall.routing, and route auth is checked
at request time by squall.route_auth, which also names the platform's variables: a route's
`secret_env` may not be one of them, since a caller can know their values.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, ValidationInfo, model_validator

from squall.manifest.errors import did_you_mean, fail, show
from squall.manifest.sections import Section, TriggerAlias, TriggerSection
from squall.manifest.values import is_env_name
from squall.route_auth import PLATFORM_ENV_NAMES, PLATFORM_ENV_PREFIXES, is_platform_variable

DEFAULT_ROUTE = "$default"
ANY = "ANY"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", ANY)
RESERVED_SEGMENT = "_squall"
"""First path segment of the platform's own API and console: no user route may use it."""

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}")
_LITERAL = re.compile(r"[^\s{}?#\\\"]+")


# ------------------------------------------------------------------ auth


class AuthType(str, Enum):
    """How a route checks its callers: a shared key, or an HMAC signature of the body."""

    API_KEY = "api_key"
    HMAC = "hmac"


DEFAULT_AUTH_HEADERS = {AuthType.API_KEY.value: "x-api-key", AuthType.HMAC.value: "x-signature-256"}
HMAC_PRESETS: dict[str, dict[str, str]] = {
    "github": {"header": "x-hub-signature-256", "prefix": "sha256="},
}


def _check_auth_type(value: Any) -> AuthType:
    choices = [kind.value for kind in AuthType]
    if isinstance(value, str) and value in choices:
        return AuthType(value)
    raise ValueError(f"must be one of {', '.join(choices)}, got {show(value)}"
                     f"{did_you_mean(value, choices)}")


def _check_secret_env(value: Any) -> str:
    if not is_env_name(value):
        raise ValueError("must be the name of the environment variable holding the secret "
                         f"(letters, digits and _, not starting with a digit), got {show(value)}")
    if is_platform_variable(str(value)):
        raise ValueError(f"{show(value)} is a variable the platform sets for every function (names starting "
                         f"with {', '.join(PLATFORM_ENV_PREFIXES[:-1])} or {PLATFORM_ENV_PREFIXES[-1]}, and "
                         f"{', '.join(sorted(PLATFORM_ENV_NAMES))}), "
                         "whose value a caller can know: name a secret the function lists under secrets: "
                         "or a variable of its env:")
    return str(value)


def _check_header(value: Any) -> str:
    if isinstance(value, str) and _HEADER_NAME.fullmatch(value):
        return value.lower()
    raise ValueError(f"must be an HTTP header name such as X-Api-Key, got {show(value)}")


def _check_prefix(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f'must be the text before the hex digest, such as "sha256=", got {show(value)}')


def _check_preset(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value in HMAC_PRESETS):
        return value
    raise ValueError(f"must be one of {', '.join(HMAC_PRESETS)}, got {show(value)}"
                     f"{did_you_mean(value, HMAC_PRESETS)}")


class RouteAuth(Section):
    """`auth:` of an HTTP trigger; `header` is stored lowercased."""

    type: Annotated[AuthType, BeforeValidator(_check_auth_type),
                    Field(description="api_key or hmac")]
    secret_env: Annotated[str, BeforeValidator(_check_secret_env),
                          Field(description="the environment variable that holds the key or secret")]
    header: Annotated[str, BeforeValidator(_check_header)] = ""
    prefix: Annotated[str, BeforeValidator(_check_prefix)] = ""
    preset: Annotated[str | None, BeforeValidator(_check_preset)] = None

    @classmethod
    def prepare(cls, data: dict[Any, Any], info: ValidationInfo) -> dict[Any, Any]:
        """Fill `header` (and `prefix`) from the type's default and the preset."""
        kind, preset = data.get("type"), data.get("preset")
        defaults: dict[str, str] = {}
        if isinstance(kind, str) and kind in DEFAULT_AUTH_HEADERS:
            defaults["header"] = DEFAULT_AUTH_HEADERS[kind]
        if isinstance(preset, str) and preset in HMAC_PRESETS:
            defaults.update(HMAC_PRESETS[preset])
        return {**defaults, **data}

    @model_validator(mode="after")
    def _check_hmac_keys(self) -> RouteAuth:
        for key in ("preset", "prefix"):
            if self.type is not AuthType.HMAC and getattr(self, key):
                raise fail(f"is only used with type hmac; remove it for type {self.type.value}", key)
        return self


# ------------------------------------------------------------------ http routes


def _segment_shape(segment: str, last: bool) -> tuple[str, str | None]:
    """(shape, parameter name) of one path segment: literal text, `{}` or `{+}`."""
    if not segment:
        raise ValueError('has an empty segment: write it without "//" or a trailing "/"')
    param = _PARAM.fullmatch(segment)
    if param is not None:
        if param.group(2) and not last:
            raise ValueError(f"{show(segment)} must be the last segment: a greedy parameter "
                             "takes the rest of the path")
        return ("{+}" if param.group(2) else "{}"), param.group(1)
    if "{" in segment or "}" in segment:
        raise ValueError(f"segment {show(segment)} is not valid: a parameter is a whole segment, "
                         "{name} or a final {name+}, with a name of letters, digits and _")
    if segment in (".", "..") or not _LITERAL.fullmatch(segment):
        raise ValueError(f"segment {show(segment)} is not valid: a segment may not be . or .. "
                         'and may not hold spaces, ?, #, \\ or "')
    return segment, None


def route_shape(path: str) -> str:
    """Validate a route path; return it with parameter names erased (`/a/{}/{+}`)."""
    if not path.startswith("/"):
        raise ValueError(f'path {show(path)} must start with "/"')
    if path == "/":
        return path
    segments = path[1:].split("/")
    if segments[0].lower() == RESERVED_SEGMENT:
        raise ValueError(f"path {show(path)} is under /{RESERVED_SEGMENT}/, which is reserved for "
                         "the platform's API and console; choose another path")
    shapes, names = [], []
    for index, segment in enumerate(segments):
        try:
            shape, name = _segment_shape(segment, last=index == len(segments) - 1)
        except ValueError as exc:
            raise ValueError(f"path {show(path)}: {exc}") from None
        if name is not None and name in names:
            raise ValueError(f"path {show(path)} repeats the parameter {{{name}}}; "
                             "each name may appear once")
        shapes.append(shape)
        names.append(name)
    return "/" + "/".join(shapes)


def normalize_route_key(value: Any) -> str:
    """`"get  /a/{b}"` -> `"GET /a/{b}"`; `"$default"` stays. Raises ValueError if invalid."""
    if not isinstance(value, str):
        raise ValueError(f'must be a route "METHOD /path" such as "GET /status", got {show(value)}')
    text = value.strip()
    if text == DEFAULT_ROUTE:
        return text
    parts = text.split(maxsplit=1)
    if len(parts) != 2:
        raise ValueError(f'must read "METHOD /path" (e.g. "GET /status") or "{DEFAULT_ROUTE}", '
                         f"got {show(value)}")
    method, path = parts[0].upper(), parts[1]
    if method not in HTTP_METHODS:
        raise ValueError(f"{show(parts[0])} is not an HTTP method squall routes; expected one of "
                         f"{', '.join(HTTP_METHODS)}{did_you_mean(method, HTTP_METHODS)}")
    route_shape(path)
    return f"{method} {path}"


class HttpTrigger(TriggerSection):
    """`- http: "METHOD /path"`: requests matching the route invoke the function.

    Routes follow API Gateway HTTP APIs: `{name}` segments, a final greedy `{name+}`, method
    `ANY`, and the catch-all route `$default` (whose method is ANY and path `$default`).
    """

    kind: ClassVar[str] = "http"

    http: Annotated[str, BeforeValidator(normalize_route_key),
                    Field(description='the route, "METHOD /path"')]
    auth: RouteAuth | None = None
    alias: TriggerAlias = None

    @property
    def is_default(self) -> bool:
        return self.http == DEFAULT_ROUTE

    @property
    def method(self) -> str:
        return ANY if self.is_default else self.http.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.http if self.is_default else self.http.split(" ", 1)[1]

    @property
    def shape(self) -> str:
        """The route with parameter names erased: equal shapes are the same route."""
        return self.http if self.is_default else f"{self.method} {route_shape(self.path)}"
