"""The triggers of squall.yaml (`http:` routes and their `auth`), the registry of trigger
kinds, and the strict base model that every section of the manifest shares.

A trigger is a mapping keyed by its kind: `- http: "GET /status"`. `TRIGGER_KINDS` maps each
kind to its model. squall.manifest.event_triggers (imported at the end of this module) adds the kinds
schedule, topic, queue and bucket, and builds `Trigger` (the union of every kind's model) and
`TriggerField` (the pydantic annotation that picks the model by that key); adding a kind is
one model plus one entry in `TRIGGER_KINDS` and in `Trigger`.

Validators raise `ValueError` for a problem with the value being validated, or
`raise fail(message, *keys)` for a problem at a key below it; squall.manifest turns both into
a ManifestError carrying the YAML line. The user reference is docs/manifest.md.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, ValidationInfo, model_validator

from squall.manifest.errors import did_you_mean, fail, show
from squall.manifest.sections import Section
from squall.manifest.values import check_alias_name, is_env_name
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


TriggerAlias = Annotated[str | None, BeforeValidator(check_alias_name),
                         Field(exclude_if=lambda value: value is None,
                               description="the alias of the function the trigger reaches (default: live)")]
"""A trigger's `alias`: left out of the configuration (and so of the version hash) when not given."""


class HttpTrigger(Section):
    """`- http: "METHOD /path"`: requests matching the route invoke the function.

    Routes follow API Gateway HTTP APIs: `{name}` segments, a final greedy `{name+}`, method
    `ANY`, and the catch-all route `$default` (whose method is ANY and path `$default`).
    """

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


# ------------------------------------------------------------------ trigger kinds


TRIGGER_KINDS: dict[str, type[Section]] = {"http": HttpTrigger}
"""Trigger kind (the key that names it in YAML) -> its model; squall.manifest.event_triggers adds its kinds."""


def trigger_kind(value: Any) -> str | None:
    """The kind of a trigger mapping (its one key naming a kind) or model; None if unclear."""
    if isinstance(value, BaseModel):
        return next((kind for kind, model in TRIGGER_KINDS.items() if isinstance(value, model)), None)
    if isinstance(value, dict):
        kinds = [key for key in value if key in TRIGGER_KINDS]
        return kinds[0] if len(kinds) == 1 else None
    return None


def trigger_kind_message(value: Any) -> str:
    """Why `trigger_kind(value)` found no kind."""
    if not isinstance(value, dict):
        return ('must be a mapping keyed by the trigger kind (http), e.g. http: "GET /status"; the '
                f"kinds are {', '.join(TRIGGER_KINDS)}; got {show(value)}")
    found = [key for key in value if key in TRIGGER_KINDS]
    if found:
        return f"names several trigger kinds ({', '.join(found)}); give each its own list item"
    first = next(iter(value), "")
    close = did_you_mean(first, TRIGGER_KINDS)
    kinds = ", ".join(kind + (close if close and f'"{kind}"' in close else "") for kind in TRIGGER_KINDS)
    return f"has no trigger kind: expected one of the keys {kinds}, got {show(value)}"


import squall.manifest.event_triggers  # noqa: E402, F401 - registers the event trigger kinds (it needs Section)
