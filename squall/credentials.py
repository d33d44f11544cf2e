"""The scoped, short-lived credential each function instance gets.

A credential is an AWS-style key pair: the access key id names the function and when the
credential expires; the secret key is an HMAC of the access key id under the node's signing
key (kept in the store, shared by every node), so any node can check it without storing
anything. Instances get it as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
(boto3 signs with the pair and sends the session token, as with the temporary credentials
Lambda gives; squall's AWS doors require the token with a function's key: `session_token_for`)
and as SQUALL_FUNCTION_TOKEN (`<access key id>:<secret>`, what squall.sdk sends).

What a credential allows is not in it: it is the grants of the function's active version
(squall/manifest/grants.py), looked up on every request, so a deploy that removes a grant takes
effect at once. Nodes replace their instances' credentials every CREDENTIAL_REFRESH seconds,
well before they expire.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from squall.settings import CREDENTIAL_REFRESH_SECONDS

CREDENTIAL_LIFETIME = 12 * 3600.0
CREDENTIAL_REFRESH = CREDENTIAL_REFRESH_SECONDS.default
PREFIX = "SQF"
"""Access key ids of function credentials start with this (the admin's is `admin`)."""


@dataclass(frozen=True, slots=True)
class Credential:
    access_key_id: str
    secret_access_key: str
    session_token: str
    function: str
    expires_at: int

    @property
    def token(self) -> str:
        return f"{self.access_key_id}:{self.secret_access_key}"


def _secret(key: bytes, access_key_id: str) -> str:
    digest = hmac.new(key, f"credential:{access_key_id}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest[:30]).decode()


def _session_token(key: bytes, access_key_id: str) -> str:
    digest = hmac.new(key, f"session:{access_key_id}".encode(), hashlib.sha512).digest()
    return base64.b64encode(digest).decode()


def issue(key: bytes, function: str, now: float, lifetime: float = CREDENTIAL_LIFETIME) -> Credential:
    """A credential of `function` valid until `now + lifetime`."""
    expires_at = int(now + lifetime)
    encoded = base64.b32encode(f"{function}:{expires_at}".encode()).decode().rstrip("=")
    access_key_id = PREFIX + encoded
    return Credential(access_key_id, _secret(key, access_key_id), _session_token(key, access_key_id), function,
                      expires_at)


def _decode(access_key_id: str) -> tuple[str, int] | None:
    if not access_key_id.startswith(PREFIX):
        return None
    encoded = access_key_id[len(PREFIX):]
    try:
        function, _, expires = base64.b32decode(encoded + "=" * (-len(encoded) % 8)).decode().rpartition(":")
        return function, int(expires)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


def secret_for(key: bytes, access_key_id: str, now: float) -> str | None:
    """The secret key of a function credential that has not expired, else None."""
    decoded = _decode(access_key_id)
    if decoded is None or decoded[1] <= now:
        return None
    return _secret(key, access_key_id)


def session_token_for(key: bytes, access_key_id: str) -> str | None:
    """The session token a request signed with `access_key_id` must carry: a function
    credential's; None for a key that is not one (the admin's has none)."""
    return _session_token(key, access_key_id) if access_key_id.startswith(PREFIX) else None


def function_of(access_key_id: str) -> str | None:
    """The function an access key id names (check the signature or secret first)."""
    decoded = _decode(access_key_id)
    return decoded[0] if decoded else None


def check_token(key: bytes, token: str, now: float) -> str | None:
    """The function of a SQUALL_FUNCTION_TOKEN that is ours and not expired, else None."""
    access_key_id, _, secret = token.partition(":")
    expected = secret_for(key, access_key_id, now)
    if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
        return None
    return function_of(access_key_id)
