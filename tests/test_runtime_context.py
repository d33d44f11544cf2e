"""Unit tests of squall/runtime/context.py: the context object as Lambda's runtime builds it."""

from __future__ import annotations

from squall.runtime.context import LambdaContext, client_context_of


def test_context_identity_and_client_context_are_lambdas_objects() -> None:
    context = LambdaContext(request_id="r", function_name="f", function_version="$LATEST", invoked_function_arn="arn",
                            memory_limit_in_mb=128, log_group_name="g", log_stream_name="s", deadline_ms=0,
                            client_context=client_context_of({"custom": {"a": 1}, "env": {"b": "2"},
                                                              "client": {"app_title": "Cards", "extra": "x"}}))

    assert (context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id) == (None, None)
    assert context.client_context is not None and context.client_context.custom == {"a": 1}
    assert context.client_context.env == {"b": "2"} and context.client_context.client is not None
    assert (context.client_context.client.app_title, context.client_context.client.installation_id) == ("Cards", None)
    assert not hasattr(context.client_context.client, "extra")
    assert client_context_of(None) is None and client_context_of([1]) is None
    assert client_context_of({}).client is None  # type: ignore[union-attr]
