"""AWS Signature Version 4 checks for the AWS-compatible endpoints (Lambda, DynamoDB).

`verify_sigv4` checks a request's `Authorization: AWS4-HMAC-SHA256 ...` header and
returns who signed it; every refusal is an `AwsAuthError` carrying AWS's error code,
message and status, so boto3 and the aws CLI report it as they would against AWS.
The signature is recomputed by botocore's own `SigV4Auth`, not by a second
implementation; this module only rebuilds the request botocore signed:

* the path must be the raw, still percent-encoded path as received (ASGI
  `raw_path`, never the decoded `path`): botocore percent-encodes it once more, so
  `/functions/arn%3Aaws...` and `/functions/arn:aws...` canonicalize differently;
* the query is decoded and handed to botocore as parameters, which it re-encodes
  canonically, so equivalent encodings (`~` or `%7E`) verify alike;
* the signing time is the request's `X-Amz-Date` (put in `request.context`);
  `SigV4Auth.add_auth` would stamp the current time instead, so it is not used;
* only the headers named in `SignedHeaders` are copied, and `host` must be one.

botocore trusts a signed `x-amz-content-sha256` instead of hashing the body, so
that header is checked against the body here (`UNSIGNED-PAYLOAD` is accepted:
the body is then unauthenticated, as on AWS). A door checks in two steps so that
it reads no body for a stranger: `check_headers` (key, date, scope; the signature
too when the payload hash is in that header) before reading, then
`PendingSignature.check_body` on the body read under the door's size cap.
Presigned URLs (query-string auth)
and the `Date` header in place of `X-Amz-Date` are not supported.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW = timedelta(minutes=15)
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

BAD_SIGNATURE = ("The request signature we calculated does not match the signature you provided. "
                 "Check your AWS Secret Access Key and signing method. "
                 "Consult the service documentation for details.")
UNKNOWN_KEY = "The security token included in the request is invalid."


class AwsAuthError(Exception):
    """A refused request: `code` is AWS's error code (e.g. `InvalidSignatureException`)."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class SignedIdentity:
    """Who signed a verified request, and the scope they signed it for."""

    access_key_id: str
    region: str
    service: str


@dataclass(frozen=True, slots=True)
class _Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: str
    signature: str


def _incomplete(message: str) -> AwsAuthError:
    return AwsAuthError("IncompleteSignatureException", message)


def _invalid(message: str = BAD_SIGNATURE) -> AwsAuthError:
    return AwsAuthError("InvalidSignatureException", message)


def _parse_authorization(value: str) -> _Authorization:
    """Split `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(f"Unsupported AWS 'algorithm': '{algorithm}'. Only '{ALGORITHM}' is supported.")
    params: dict[str, str] = {}
    for part in (p.strip() for p in rest.split(",")):
        key, eq, val = part.partition("=")
        if not eq:
            raise _incomplete(f"'{part}' not a valid key=value pair (missing equal-sign) "
                              f"in Authorization header: '{value}'.")
        params[key.strip()] = val.strip()
    missing = [name for name in ("Credential", "Signature", "SignedHeaders") if not params.get(name)]
    if missing:
        raise _incomplete(" ".join(f"Authorization header requires '{name}' parameter." for name in missing)
                          + f" Authorization={value}")
    scope = params["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope):
        raise _incomplete("Credential must have exactly 5 slash-delimited elements, "
                          f"e.g. keyid/date/region/service/aws4_request, got '{params['Credential']}'.")
    if not params["Credential"].isascii():
        raise _incomplete(f"Credential must be ASCII text, got '{params['Credential']}'.")
    headers = ";".join(sorted(h.strip().lower() for h in params["SignedHeaders"].split(";")))
    return _Authorization(scope[0], scope[1], scope[2], scope[3], headers, params["Signature"].lower())


_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")


def _amz_date(text: str) -> datetime:
    """`20261123T120000Z` as a UTC datetime (strptime took a third of the time checks cost)."""
    match = _AMZ_DATE.fullmatch(text)
    if match is None:
        raise ValueError(text)
    year, month, day, hour, minute, second = map(int, match.groups())
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def _check_time(amz_date: str, scope_date: str, now: datetime) -> None:
    try:
        signed_at = _amz_date(amz_date)
    except ValueError:
        raise _incomplete(f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
                          "Expected e.g. '20261123T120000Z'.") from None
    if scope_date != amz_date[:8]:
        raise _invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                       f"date from HTTP: '{scope_date}' != '{amz_date[:8]}', from '{amz_date}'.")
    now = now if now.tzinfo else now.replace(tzinfo=UTC)

    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime(AMZ_DATE_FORMAT)

    if signed_at < now - MAX_CLOCK_SKEW:
        raise _invalid(f"Signature expired: {amz_date} is now earlier than "
                       f"{stamp(now - MAX_CLOCK_SKEW)} ({stamp(now)} - 15 min.)")
    if signed_at > now + MAX_CLOCK_SKEW:
        raise _invalid(f"Signature not yet current: {amz_date} is still later than "
                       f"{stamp(now + MAX_CLOCK_SKEW)} ({stamp(now)} + 15 min.)")


def _query_params(query: str) -> list[tuple[str, str]] | None:
    """Decoded `(key, value)` pairs in botocore's split; None if not UTF-8 (then signed as sent)."""
    try:
        return [(unquote(k, errors="strict"), unquote(v, errors="strict"))
                for k, _, v in (pair.partition("=") for pair in query.split("&"))] if query else []
    except UnicodeDecodeError:
        return None


def _expected_signature(method: str, url: str, headers: Mapping[str, str], body: bytes,
                        auth: _Authorization, amz_date: str, secret: str) -> str:
    """botocore's signature for the request as the client built it."""
    parts = urlsplit(url)
    params = _query_params(parts.query)
    request = AWSRequest(
        method=method.upper(),
        url=urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query if params is None else "",
                        "")),
        headers={name: headers[name] for name in auth.signed_headers.split(";") if name in headers},
        data=body,
        params=params or None,
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(auth.access_key_id, secret), auth.service, auth.region)
    # A signed header that is absent, or that botocore never signs (user-agent...), changes the
    # canonical request's header list, so the signatures then differ.
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


def _check_content_sha256(headers: Mapping[str, str], body: bytes) -> None:
    claimed = headers.get("x-amz-content-sha256")
    if claimed is None or claimed == UNSIGNED_PAYLOAD:
        return
    if not hmac.compare_digest(claimed.lower().encode("ascii", "replace"),
                               hashlib.sha256(body).hexdigest().encode("ascii")):
        raise AwsAuthError("XAmzContentSHA256Mismatch",
                           "The provided 'x-amz-content-sha256' header does not match what was computed.",
                           400)


@dataclass(frozen=True, slots=True)
class PendingSignature:
    """A request checked in all but its body: the signer's key is known, the date and scope
    are right, and, when the client signed the payload's hash in `x-amz-content-sha256`
    (or `UNSIGNED-PAYLOAD`), the signature too. `check_body` finishes the check."""

    method: str
    url: str
    headers: Mapping[str, str]
    auth: _Authorization
    amz_date: str
    secret: str
    signature_checked: bool

    @property
    def identity(self) -> SignedIdentity:
        return SignedIdentity(self.auth.access_key_id, self.auth.region, self.auth.service)

    def check_body(self, body: bytes) -> SignedIdentity:
        """The signer, once `body` is the one they signed; else `AwsAuthError`."""
        if not self.signature_checked:
            _check_signature(self, body)
        _check_content_sha256(self.headers, body)
        return self.identity


def _check_signature(pending: PendingSignature, body: bytes) -> None:
    expected = _expected_signature(pending.method, pending.url, pending.headers, body, pending.auth,
                                   pending.amz_date, pending.secret)
    if not hmac.compare_digest(pending.auth.signature.encode("ascii", "replace"), expected.encode("ascii")):
        raise _invalid()


def check_headers(method: str, url: str, headers: Mapping[str, str], secret_for: Callable[[str], str | None],
                  now: datetime, *, service: str | None = None,
                  token_for: Callable[[str], str | None] | None = None) -> PendingSignature:
    """Everything `verify_sigv4` checks that does not need the body, so that a door refuses an
    unknown signer, a stale date or a wrong scope before it reads a byte of the body.
    `token_for(access_key_id)`, when given, is the session token (X-Amz-Security-Token) the
    key's requests must carry, signed; None: the key has none, and one sent is not looked at
    (an admin whose shell holds real AWS session credentials still gets in)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    authorization = lowered.get("authorization", "").strip()
    if not authorization:
        raise AwsAuthError("MissingAuthenticationTokenException", "Missing Authentication Token")
    auth = _parse_authorization(authorization)
    amz_date = lowered.get("x-amz-date", "").strip()
    if not amz_date:
        raise _incomplete("Authorization header requires existence of a 'X-Amz-Date' header. "
                          f"Authorization={authorization}")
    if "host" not in auth.signed_headers.split(";"):
        raise _incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    if service is not None and auth.service != service:
        raise _invalid(f"Credential should be scoped to correct service: '{service}'.")
    _check_time(amz_date, auth.date, now)
    secret = secret_for(auth.access_key_id)
    if not secret:
        raise AwsAuthError("UnrecognizedClientException", UNKNOWN_KEY)
    if token_for is not None:
        _check_session_token(lowered.get("x-amz-security-token"), token_for(auth.access_key_id), auth)
    pending = PendingSignature(method, url, lowered, auth, amz_date, secret, signature_checked=False)
    if "x-amz-content-sha256" not in lowered:
        return pending
    _check_signature(pending, b"")  # botocore signs the claimed hash, not the body
    return PendingSignature(method, url, lowered, auth, amz_date, secret, signature_checked=True)


def _check_session_token(sent: str | None, expected: str | None, auth: _Authorization) -> None:
    if expected is None:
        return
    if sent is None or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise AwsAuthError("UnrecognizedClientException", UNKNOWN_KEY)
    if "x-amz-security-token" not in auth.signed_headers.split(";"):
        raise _incomplete("'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.")


def verify_sigv4(method: str, url: str, headers: Mapping[str, str], body: bytes,
                 secret_for: Callable[[str], str | None], now: datetime, *,
                 service: str | None = None) -> SignedIdentity:
    """Check the request's SigV4 signature; return the signer or raise `AwsAuthError`.

    `url` is the URL the client signed: scheme, the `Host` header, and the raw
    (percent-encoded) path and query as received. Header names may be in any case.
    `secret_for(access_key_id)` gives the secret key, or None for an unknown key.
    `now` is the server's clock; requests more than 15 minutes off are refused.
    `service`, when given, must be the service named in the credential scope.
    """
    return check_headers(method, url, headers, secret_for, now, service=service).check_body(body)


def asgi_headers(scope: Mapping[str, Any]) -> dict[str, str]:
    """An ASGI scope's headers, names lowercased; repeated headers joined with `,` as SigV4 does."""
    merged: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1").strip()
        merged[name] = f"{merged[name]},{value}" if name in merged else value
    return merged


STRIPPED_PREFIX = "squall.path_prefix"
"""ASGI scope key: the path a router in front took off (a stage's, squall/server/stages.py);
the client signed the whole path."""


def asgi_signed_url(scope: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> str:
    """The URL as the client signed it: scheme, `Host` header, raw path and raw query string."""
    host = (asgi_headers(scope) if headers is None else headers).get("host", "")
    if not host and scope.get("server"):
        host = "{}:{}".format(*scope["server"])
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else quote(str(scope.get("path") or "/"), safe="/~")
    path = scope.get(STRIPPED_PREFIX, "") + path
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}{path}" + (f"?{query}" if query else "")


def check_asgi_headers(scope: Mapping[str, Any], secret_for: Callable[[str], str | None], now: datetime, *,
                       service: str | None = None,
                       token_for: Callable[[str], str | None] | None = None) -> PendingSignature:
    """`check_headers` for an ASGI request, before its body is read (see `verify_asgi`)."""
    headers = asgi_headers(scope)
    return check_headers(scope["method"], asgi_signed_url(scope, headers), headers, secret_for, now,
                         service=service, token_for=token_for)


def verify_asgi(scope: Mapping[str, Any], body: bytes, secret_for: Callable[[str], str | None],
                now: datetime, *, service: str | None = None) -> SignedIdentity:
    """`verify_sigv4` for an ASGI request: `verify_asgi(request.scope, body, ...)`.

    Uses `raw_path` (Starlette's `request.url` is built from the decoded path and
    would not verify). Behind a proxy that rewrites the path or Host the signature
    cannot match. A door should rather call `check_asgi_headers` before reading the
    body, then `check_body` on what it read.
    """
    return check_asgi_headers(scope, secret_for, now, service=service).check_body(body)


def aws_error_body(error: AwsAuthError) -> dict[str, str]:
    """The JSON-protocol error body (DynamoDB): `{"__type": code, "message": ...}`.

    REST-JSON Lambda answers `{"Type": "User", "message": ...}` and names the code
    in the `x-amzn-errortype` header (`aws_error_headers`); botocore reads either.
    The `x-amzn-requestid` header is left to the caller.
    """
    return {"__type": error.code, "message": error.message}


def aws_error_headers(error: AwsAuthError) -> dict[str, str]:
    """Headers naming the error for REST-JSON clients: `x-amzn-errortype`."""
    return {"x-amzn-errortype": error.code}
