"""The `context` object handed to handlers: AWS Lambda's Python context, attribute for attribute."""

from __future__ import annotations

import time
from typing import Any


class LambdaContext:
    """Lambda's context. `memory_limit_in_mb` is a string, as in Lambda's own runtime.

    `clock` returns the current time in seconds; it is injectable for tests.
    """

    def __init__(self, *, request_id: str, function_name: str, function_version: str,
                 invoked_function_arn: str, memory_limit_in_mb: int, log_group_name: str,
                 log_stream_name: str, deadline_ms: int, client_context: Any = None,
                 identity: Any = None, clock: Any = time.time) -> None:
        self.aws_request_id = request_id
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = str(memory_limit_in_mb)
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.client_context = client_context
        self.identity = identity
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
