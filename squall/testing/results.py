"""What a test gets back from a project: invocations, asynchronous runs, log lines, schedule fires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class FunctionError:
    """Lambda's error object of a failed invocation."""

    type: str
    message: str
    stack_trace: list[str]

    @classmethod
    def from_payload(cls, payload: Any) -> FunctionError:
        error = payload if isinstance(payload, dict) else {}
        return cls(str(error.get("errorType") or "Error"), str(error.get("errorMessage") or payload),
                   [str(line) for line in error.get("stackTrace") or []])

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(frozen=True)
class Invocation:
    """One synchronous invocation: `payload` is what the function returned (decoded JSON), or
    Lambda's error object (`errorMessage`, `errorType`, `stackTrace`) when `ok` is false."""

    request_id: str
    function: str
    version: int
    ok: bool
    payload: Any

    @property
    def error(self) -> FunctionError | None:
        """The function's error when it failed, else None."""
        return None if self.ok else FunctionError.from_payload(self.payload)

    @classmethod
    def from_api(cls, answer: dict[str, Any]) -> Invocation:
        """From the platform API's answer to an invoke (`requestId`, `function`, ...)."""
        return cls(str(answer["requestId"]), str(answer["function"]), int(answer["version"]), bool(answer["ok"]),
                   answer.get("payload"))


@dataclass(frozen=True)
class AsyncInvocation:
    """An asynchronous invocation (stored, then run with retries): `status` is `succeeded` or
    `dead` once it has ended (`queued` or `running` before); `error` is its last attempt's."""

    request_id: str
    function: str
    status: str
    attempts: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "dead")

    @classmethod
    def from_api(cls, event: dict[str, Any]) -> AsyncInvocation:
        """From the platform API's view of a stored event (`GET /_squall/api/events/ID`)."""
        return cls(str(event["id"]), str(event["function"]), str(event["status"]), int(event["attempts"]),
                   event.get("last_error"))


@dataclass(frozen=True)
class LogLine:
    """One stored log line of a function: its `message` as printed or logged, between Lambda's
    `START`, `END` and `REPORT` lines of its invocation (`request_id`; empty for lines
    printed outside an invocation)."""

    request_id: str
    level: str
    message: str
    ts: float
    version: int

    @classmethod
    def from_api(cls, line: dict[str, Any]) -> LogLine:
        return cls(str(line.get("request_id") or ""), str(line["level"]), str(line["message"]), float(line["ts"]),
                   int(line.get("version") or 0))


@dataclass(frozen=True)
class Fire:
    """One fire of a schedule that the clock went past: the schedule (`name` and `key`,
    `FUNCTION/NAME`), its fire `time` (UTC), the `event` delivered (EventBridge's Scheduled
    Event, or the trigger's `input`) and the invocation it made."""

    schedule: str
    key: str
    function: str
    time: datetime
    event: Any
    invocation: Invocation

    @property
    def ok(self) -> bool:
        return self.invocation.ok

    @property
    def payload(self) -> Any:
        return self.invocation.payload

    @property
    def request_id(self) -> str:
        return self.invocation.request_id
