"""Credential checks for HTTP routes that declare `auth`.

Each check returns `None` when the request may pass and an `AuthFailure`
otherwise: 401 when the credential is missing, 403 when it is wrong, and 403
when the route's secret is not configured on the server or names a platform
variable such as AWS_REGION (a misconfigured route never lets a request through). Comparisons run in constant time. `headers` is
the event's header mapping: names lowercased.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Mapping

NOT_CONFIGURED = "Route secret is not configured"
PLATFORM_ENV_PREFIXES = ("AWS_", "SQUALL_", "LAMBDA_", "_")
PLATFORM_ENV_NAMES = frozenset({"PATH", "LANG", "TZ", "HOME"})
"""Variables the platform sets in every instance (squall/node/specs.py): their values are
known or guessable (AWS_REGION is us-east-1), so a route's secret may not be one of them."""


def is_platform_variable(name: str) -> bool:
    """Whether `name` is (or may become) a variable the platform sets for every function."""
    return name in PLATFORM_ENV_NAMES or name.upper().startswith(PLATFORM_ENV_PREFIXES)


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """Why a request was refused; sent as `{"message": message}` with `status`."""

    status: int
    message: str


def _presented(headers: Mapping[str, str], header: str) -> str | AuthFailure:
    value = headers.get(header.lower(), "").strip()
    return value if value else AuthFailure(401, f"Missing {header.lower()} header")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def check_api_key(headers: Mapping[str, str], header: str, expected: str) -> AuthFailure | None:
    """The request must carry `expected` in `header` (e.g. `x-api-key`)."""
    if not expected:
        return AuthFailure(403, NOT_CONFIGURED)
    given = _presented(headers, header)
    if isinstance(given, AuthFailure):
        return given
    if not _same(given, expected):
        return AuthFailure(403, f"The {header.lower()} header does not match")
    return None


def check_hmac_sha256(headers: Mapping[str, str], body: bytes, header: str, prefix: str,
                      secret: str) -> AuthFailure | None:
    """`header` must read `prefix` + hex HMAC-SHA256 of `body` under `secret`.

    This is GitHub's webhook scheme: header `x-hub-signature-256`, prefix
    `sha256=`. The hex digits are compared case-insensitively.
    """
    if not secret:
        return AuthFailure(403, NOT_CONFIGURED)
    given = _presented(headers, header)
    if isinstance(given, AuthFailure):
        return given
    if not given.startswith(prefix):
        return AuthFailure(403, f"The {header.lower()} header must start with {prefix!r}")
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    if not _same(given[len(prefix):].lower(), digest):
        return AuthFailure(403, "Signature does not match the request body")
    return None
