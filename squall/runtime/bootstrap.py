"""The code that runs inside an instance process: import the handler, then serve invocations.

Started as `python -I -S -c "...bootstrap.main()" PATH...`; speaks the protocol of
`squall.runtime.protocol` on fd 0 (in) and fd 1 (out). It never runs platform
code after the user's handler is imported, only this loop.
"""

from __future__ import annotations

import importlib
import logging
import os
import resource
import sys
import time
import traceback
from typing import Any, Callable

import orjson

from squall.runtime.context import LambdaContext
from squall.runtime.protocol import LENGTHS, encode_frame

LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"


class Channel:
    """Frames in on a private copy of fd 0, frames out on a private copy of fd 1."""

    def __init__(self) -> None:
        self.fd_in = os.dup(0)
        self.fd_out = os.dup(1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(1, 2)
        self.nonce = b""

    def _read_exactly(self, size: int) -> bytes:
        chunks, left = [], size
        while left:
            chunk = os.read(self.fd_in, left)
            if not chunk:
                raise EOFError("platform closed the channel")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def receive(self) -> tuple[dict[str, Any], bytes]:
        head_len, payload_len = LENGTHS.unpack(self._read_exactly(LENGTHS.size))
        head = orjson.loads(self._read_exactly(head_len))
        return head, self._read_exactly(payload_len)

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        data = memoryview(encode_frame(header, payload, self.nonce))
        while data:
            data = data[os.write(self.fd_out, data):]


class RequestIdFilter(logging.Filter):
    """Stamps every log record with the current request id, as Lambda's runtime does."""

    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


class LambdaLogHandler(logging.StreamHandler):
    """Writes one record per line; newlines inside a record become CR (joined back by the platform)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text[:-1].replace("\n", "\r") + "\n" if text.endswith("\n") else text.replace("\n", "\r")


def setup_logging(request_filter: RequestIdFilter) -> None:
    handler = LambdaLogHandler(sys.stdout)
    handler.terminator = ""
    formatter = logging.Formatter(LOG_FORMAT, "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(request_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def setup_environment(spec: dict[str, Any]) -> None:
    os.environ.clear()
    os.environ.update(spec["environ"])
    for path in reversed(spec["sys_path"]):
        sys.path.insert(0, path)
    os.chdir(spec["code_dir"])


def error_object(exc: BaseException, request_id: str, error_type: str | None = None,
                 message: str | None = None) -> dict[str, Any]:
    """Lambda's error object for `exc`, without this module's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    frames = traceback.extract_tb(tb)
    return {
        "errorMessage": str(exc) if message is None else message,
        "errorType": error_type or type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames),
    }


def import_handler(handler: str) -> Callable[..., Any]:
    """Import `module.func`, raising an exception whose error object reads as Lambda's."""
    module_name, _, attribute = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        raise InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}") from exc
    except ImportError as exc:
        raise InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise InitError("Runtime.HandlerNotFound",
                        f"Handler '{attribute}' missing on module '{module_name}'") from None


def enter_sandbox(settings: dict[str, Any], channel: Channel) -> None:
    """Apply the instance's sandbox (squall/runtime/sandbox.py); a failure is an init error.
    Imported here: the zygote has it already (it cleans up cgroups), a fresh interpreter
    without a sandbox need not load ctypes."""
    from squall.runtime import sandbox

    try:
        sandbox.enter(settings, keep_fds=(channel.fd_in, channel.fd_out))
    except (sandbox.SandboxError, OSError, ValueError, KeyError) as exc:
        raise InitError("Runtime.SandboxError", f"The instance could not enter its sandbox: {exc}") from exc


class InitError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def init_failure(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, InitError):
        return error_object(exc, "", exc.error_type)
    return error_object(exc, "", f"Runtime.{type(exc).__name__}" if not isinstance(exc, Exception)
                        else type(exc).__name__)


def serve(channel: Channel) -> None:
    """Init once, then answer invoke frames one at a time until the channel closes."""
    spec, _ = channel.receive()
    channel.nonce = spec["nonce"].encode()
    request_filter = RequestIdFilter()
    setup_logging(request_filter)
    started = time.perf_counter()
    try:
        if spec.get("sandbox"):
            enter_sandbox(spec["sandbox"], channel)
        setup_environment(spec)
        handler = import_handler(spec["handler"])
        run_hook(spec, "initializer", spec.get("deadline_ms"))
    except BaseException as exc:  # noqa: BLE001 - any failure of user code is an init error
        init_ms = (time.perf_counter() - started) * 1000
        traceback.print_exc()
        channel.send({"t": "init_error", "init_ms": init_ms}, orjson.dumps(init_failure(exc)))
        return
    channel.send({"t": "ready", "init_ms": (time.perf_counter() - started) * 1000})
    while True:
        try:
            header, event = channel.receive()
        except EOFError:
            return
        if header.get("t") == "shutdown":
            request_filter.request_id = ""
            try:
                run_hook(spec, "shutdown", header.get("deadline_ms"))
            except BaseException:  # noqa: BLE001 - the instance ends either way; the trace is logged
                traceback.print_exc()
            channel.send({"t": "bye"})
            return
        reply, payload = invoke(handler, spec, header, event, request_filter)
        channel.send(reply, payload)
        if reply.get("exiting"):
            return


def run_hook(spec: dict[str, Any], name: str, deadline_ms: int | None) -> None:
    """Call the `initializer` or `shutdown` hook of the spec, if any, as `hook(context)`."""
    target = spec.get(name)
    if not target:
        return
    hook = import_handler(target)
    deadline = deadline_ms or int(time.time() * 1000) + 10_000
    hook(LambdaContext(
        request_id="", function_name=spec["function"], function_version=spec["version"],
        invoked_function_arn=spec.get("arn", ""), memory_limit_in_mb=spec["memory"],
        log_group_name=spec["log_group"], log_stream_name=spec["log_stream"], deadline_ms=deadline))


def invoke(handler: Callable[..., Any], spec: dict[str, Any], header: dict[str, Any], event: bytes,
           request_filter: RequestIdFilter) -> tuple[dict[str, Any], bytes]:
    request_id = header["id"]
    request_filter.request_id = request_id
    context = LambdaContext(
        request_id=request_id, function_name=spec["function"], function_version=spec["version"],
        invoked_function_arn=header["arn"], memory_limit_in_mb=spec["memory"],
        log_group_name=spec["log_group"], log_stream_name=spec["log_stream"],
        deadline_ms=header["deadline_ms"])
    started = time.perf_counter()
    try:
        result = handler(orjson.loads(event) if event else None, context)
        payload = orjson.dumps(result, default=_fallback_json)
        ok = True
    except SystemExit as exc:
        payload = orjson.dumps(error_object(
            exc, request_id, "Runtime.ExitError",
            f"RequestId: {request_id} Error: Runtime exited with error: exit status {exc.code or 0}"))
        return _result(False, started, exiting=True), payload
    except BaseException as exc:  # noqa: BLE001 - the handler's failure is the invocation's result
        payload = orjson.dumps(error_object(exc, request_id))
        ok = False
    return _result(ok, started), payload


def _result(ok: bool, started: float, exiting: bool = False) -> dict[str, Any]:
    duration_ms = (time.perf_counter() - started) * 1000
    max_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"t": "result", "ok": ok, "duration_ms": duration_ms, "max_rss_kb": max_rss_kb,
            "exiting": exiting}


def _fallback_json(value: Any) -> Any:
    """What Lambda's runtime does for Decimal and other non-JSON values: str() them."""
    return str(value)


def main(adopt_path: bool = True) -> None:
    """Entry point of an instance process (argv[1:] are sys.path entries to prepend,
    unless the process was forked from a zygote that already did that)."""
    if adopt_path:
        sys.path[:0] = [p for p in sys.argv[1:] if p not in sys.path]
    channel = Channel()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        serve(channel)
    finally:
        sys.stdout.flush()
    os._exit(0)
