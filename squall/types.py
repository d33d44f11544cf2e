"""Core contracts shared across the platform: the handler signature and small value types.

Everything here is import-light so that both the server and the code running
inside an instance can use it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Protocol

JSON = Any
"""A value orjson can encode: dict, list, str, int, float, bool or None."""

Event = dict[str, Any]
"""An event handed to a handler (HTTP API 2.0 payload, a custom dict from invoke, ...)."""


class LambdaContextLike(Protocol):
    """What a handler may rely on in its second argument (AWS Lambda's context)."""

    aws_request_id: str
    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: str
    log_group_name: str
    log_stream_name: str

    def get_remaining_time_in_millis(self) -> int: ...


Handler = Callable[[Event, LambdaContextLike], JSON]
"""`handler(event, context)`: the AWS Lambda Python contract."""


class LogLevel(str, enum.Enum):
    """Level of one stored log line. Platform lines (START/END/REPORT) are SYSTEM."""

    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"
    FATAL = "FATAL"
    SYSTEM = "SYSTEM"


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line a function printed or logged during an invocation."""

    ts: float
    level: LogLevel
    message: str
