"""Unit tests of squall.route_auth: API key and HMAC-SHA256 route checks."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.route_auth import AuthFailure, check_api_key, check_hmac_sha256, is_platform_variable

SECRET = "It's a Secret to Everybody"
BODY = b"Hello, World!"
# GitHub's documented example for this secret and payload.
SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_api_key_accepted() -> None:
    assert check_api_key({"x-api-key": "k-123"}, "X-Api-Key", "k-123") is None


def test_api_key_missing_or_empty_is_401() -> None:
    missing = AuthFailure(401, "Missing x-api-key header")
    assert check_api_key({}, "x-api-key", "k-123") == missing
    assert check_api_key({"x-api-key": "  "}, "x-api-key", "k-123") == missing


def test_api_key_wrong_is_403() -> None:
    assert check_api_key({"x-api-key": "k-124"}, "x-api-key", "k-123") == AuthFailure(
        403, "The x-api-key header does not match")
    assert check_api_key({"x-api-key": "clé"}, "x-api-key", "k-123") is not None


@pytest.mark.parametrize("expected", ["", None])
def test_api_key_not_configured_is_403_even_with_a_key(expected: Any) -> None:
    for headers in ({}, {"x-api-key": ""}, {"x-api-key": "anything"}):
        assert check_api_key(headers, "x-api-key", expected) == AuthFailure(
            403, "Route secret is not configured")


def test_hmac_github_example_accepted() -> None:
    headers = {"x-hub-signature-256": SIGNATURE}
    assert check_hmac_sha256(headers, BODY, "x-hub-signature-256", "sha256=", SECRET) is None
    upper = {"x-hub-signature-256": "sha256=" + SIGNATURE[7:].upper()}
    assert check_hmac_sha256(upper, BODY, "x-hub-signature-256", "sha256=", SECRET) is None


def test_hmac_missing_is_401() -> None:
    assert check_hmac_sha256({}, BODY, "X-Hub-Signature-256", "sha256=", SECRET) == AuthFailure(
        401, "Missing x-hub-signature-256 header")


def test_hmac_wrong_body_or_secret_is_403() -> None:
    headers = {"x-hub-signature-256": SIGNATURE}
    mismatch = AuthFailure(403, "Signature does not match the request body")
    assert check_hmac_sha256(headers, BODY + b"!", "x-hub-signature-256", "sha256=",
                             SECRET) == mismatch
    assert check_hmac_sha256(headers, BODY, "x-hub-signature-256", "sha256=",
                             SECRET + "x") == mismatch
    garbage = {"x-hub-signature-256": "sha256=ünicode"}
    assert check_hmac_sha256(garbage, BODY, "x-hub-signature-256", "sha256=",
                             SECRET) == mismatch


def test_hmac_wrong_prefix_is_403() -> None:
    headers = {"x-hub-signature-256": SIGNATURE[7:]}
    assert check_hmac_sha256(headers, BODY, "x-hub-signature-256", "sha256=",
                             SECRET) == AuthFailure(
        403, "The x-hub-signature-256 header must start with 'sha256='")


@pytest.mark.parametrize("secret", ["", None])
def test_hmac_not_configured_is_403(secret: Any) -> None:
    empty_signature = "sha256=" + hmac.new(b"", BODY, hashlib.sha256).hexdigest()
    for headers in ({}, {"x-hub-signature-256": empty_signature}):
        assert check_hmac_sha256(headers, BODY, "x-hub-signature-256", "sha256=",
                                 secret) == AuthFailure(403, "Route secret is not configured")


@given(secret=st.text(min_size=1), body=st.binary())
def test_hmac_round_trip(secret: str, body: bytes) -> None:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"x-sig": f"v1={signature}"}
    assert check_hmac_sha256(headers, body, "x-sig", "v1=", secret) is None
    assert check_hmac_sha256(headers, body + b"x", "x-sig", "v1=", secret) is not None


@pytest.mark.parametrize("name", ["AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME", "SQUALL_STAGE", "LAMBDA_TASK_ROOT",
                                  "_HANDLER", "_X_AMZN_TRACE_ID", "PATH", "TZ", "HOME", "LANG", "aws_region"])
def test_platform_variables_are_recognised(name: str) -> None:
    assert is_platform_variable(name)


@pytest.mark.parametrize("name", ["STATUS_KEY", "GH_SECRET", "MY_AWS_KEY", "PATHS", "SQUALLY"])
def test_the_function_s_own_names_are_not_platform_variables(name: str) -> None:
    assert not is_platform_variable(name)
