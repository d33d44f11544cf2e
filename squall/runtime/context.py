"""The `context` object handed to handlers: AWS Lambda's Python context, attribute for attribute."""

from __future__ import annotations

import time
from typing import Any


class CognitoIdentity:
    """`context.identity`: always there, its ids None unless a Cognito identity made the call."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, cognito_identity_id: str | None = None, cognito_identity_pool_id: str | None = None) -> None:
        self.cognito_identity_id = cognito_identity_id
        self.cognito_identity_pool_id = cognito_identity_pool_id

    def __repr__(self) -> str:
        return (f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id},"
                f"cognito_identity_pool_id={self.cognito_identity_pool_id}])")


class Client:
    """`context.client_context.client`: the calling app, as a mobile SDK describes it."""

    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")

    def __init__(self, fields: dict[str, Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def __repr__(self) -> str:
        return "Client([" + ",".join(f"{name}={getattr(self, name)}" for name in self.__slots__) + "])"


class ClientContext:
    """`context.client_context` of a call that sent one (Invoke's `ClientContext`)."""

    __slots__ = ("custom", "env", "client")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.custom = fields.get("custom")
        self.env = fields.get("env")
        client = fields.get("client")
        self.client = Client(client) if isinstance(client, dict) else None

    def __repr__(self) -> str:
        return f"ClientContext([custom={self.custom},env={self.env},client={self.client}])"


def client_context_of(data: Any) -> ClientContext | None:
    """The context's client_context for a decoded client context (None: the call sent none)."""
    return ClientContext(data) if isinstance(data, dict) else None


class LambdaContext:
    """Lambda's context. `memory_limit_in_mb` is a string, as in Lambda's own runtime.

    `clock` returns the current time in seconds; it is injectable for tests.
    """

    def __init__(self, *, request_id: str, function_name: str, function_version: str,
                 invoked_function_arn: str, memory_limit_in_mb: int, log_group_name: str,
                 log_stream_name: str, deadline_ms: int, client_context: ClientContext | None = None,
                 identity: CognitoIdentity | None = None, clock: Any = time.time) -> None:
        self.aws_request_id = request_id
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = str(memory_limit_in_mb)
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.client_context = client_context
        self.identity = identity if identity is not None else CognitoIdentity()
        self.tenant_id = None
        self._deadline_ms = deadline_ms
        self._clock = clock

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the platform kills the invocation (never negative)."""
        return max(0, self._deadline_ms - int(self._clock() * 1000))

    def __repr__(self) -> str:
        return (f"LambdaContext([aws_request_id={self.aws_request_id},"
                f"function_name={self.function_name},function_version={self.function_version},"
                f"invoked_function_arn={self.invoked_function_arn}])")


def function_arn(name: str, region: str, account_id: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account_id}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn
