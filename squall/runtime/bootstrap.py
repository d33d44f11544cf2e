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

from squall import lambda_json
from squall.runtime.context import LambdaContext, client_context_of
from squall.runtime.lambda_path import restrict_imports
from squall.runtime.protocol import (
    LENGTHS,
    Bye,
    Init,
    InitFailed,
    InstanceMessage,
    Invoke,
    NodeMessage,
    ProtocolError,
    Ready,
    Result,
    Shutdown,
    from_node,
)

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

    def receive(self) -> NodeMessage:
        head_len, payload_len = LENGTHS.unpack(self._read_exactly(LENGTHS.size))
        head = self._read_exactly(head_len)
        return from_node(head, self._read_exactly(payload_len))

    def send(self, message: InstanceMessage) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        data = memoryview(message.to_bytes(self.nonce))
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


def setup_environment(init: Init) -> None:
    os.environ.clear()
    os.environ.update(init.environ)
    restrict_imports(list(init.sys_path))  # what Lambda's runtime has, not the server's packages
    os.chdir(init.code_dir)


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
    init = channel.receive()
    if not isinstance(init, Init):
        raise ProtocolError(init.TAG, None, "came before `init`")
    channel.nonce = init.nonce.encode()
    request_filter = RequestIdFilter()
    setup_logging(request_filter)
    started = time.perf_counter()
    try:
        if init.sandbox:
            enter_sandbox(init.sandbox, channel)
        setup_environment(init)
        handler = import_handler(init.handler)
        run_hook(init, init.initializer, init.deadline_ms)
    except BaseException as exc:  # noqa: BLE001 - any failure of user code is an init error
        init_ms = (time.perf_counter() - started) * 1000
        traceback.print_exc()
        channel.send(InitFailed(init_ms, lambda_json.dumps(init_failure(exc), ensure_ascii=results_ascii_only(init))))
        return
    channel.send(Ready((time.perf_counter() - started) * 1000))
    while True:
        try:
            message = channel.receive()
        except EOFError:
            return
        if isinstance(message, Shutdown):
            request_filter.request_id = ""
            try:
                run_hook(init, init.shutdown, message.deadline_ms)
            except BaseException:  # noqa: BLE001 - the instance ends either way; the trace is logged
                traceback.print_exc()
            channel.send(Bye())
            return
        if not isinstance(message, Invoke):
            raise ProtocolError(message.TAG, None, "came after `init`")
        result = invoke(handler, init, message, request_filter)
        channel.send(result)
        if result.exiting:
            return


def run_hook(init: Init, target: str | None, deadline_ms: int) -> None:
    """Call the hook `target` (the initializer or the shutdown hook), if any, as `hook(context)`."""
    if not target:
        return
    hook = import_handler(target)
    hook(LambdaContext(
        request_id="", function_name=init.function, function_version=init.version,
        invoked_function_arn=init.arn, memory_limit_in_mb=init.memory,
        log_group_name=init.log_group, log_stream_name=init.log_stream, deadline_ms=deadline_ms))


def invoke(handler: Callable[..., Any], init: Init, call: Invoke, request_filter: RequestIdFilter) -> Result:
    request_id = call.request_id
    request_filter.request_id = request_id
    ascii_only = results_ascii_only(init)
    set_trace_id(call.trace_id)
    started = time.perf_counter()
    try:
        client_context = client_context_of(lambda_json.read_event(call.client_context)) if call.client_context else None
    except ValueError as exc:
        return _runtime_failure(started, request_id, "Runtime.LambdaContextUnmarshalError",
                                f"Unable to parse Client Context JSON: {exc}", ascii_only)
    context = LambdaContext(
        request_id=request_id, function_name=init.function, function_version=call.version,
        invoked_function_arn=call.arn, memory_limit_in_mb=init.memory,
        log_group_name=init.log_group, log_stream_name=init.log_stream, deadline_ms=call.deadline_ms,
        client_context=client_context)
    try:
        event = lambda_json.read_event(call.event) if call.event else None
    except ValueError as exc:
        return _runtime_failure(started, request_id, "Runtime.UnmarshalError", f"Unable to unmarshal input: {exc}",
                                ascii_only)
    try:
        payload = lambda_json.marshal_result(handler(event, context), ensure_ascii=ascii_only)
        ok = True
    except lambda_json.MarshalError as exc:  # the result, not the handler, failed: no stack trace
        return _runtime_failure(started, request_id, exc.error_type, str(exc), ascii_only)
    except SystemExit as exc:
        payload = lambda_json.dumps(error_object(
            exc, request_id, "Runtime.ExitError",
            f"RequestId: {request_id} Error: Runtime exited with error: exit status {exc.code or 0}"),
            ensure_ascii=ascii_only)
        return _result(False, started, payload, exiting=True)
    except BaseException as exc:  # noqa: BLE001 - the handler's failure is the invocation's result
        payload = lambda_json.dumps(error_object(exc, request_id), ensure_ascii=ascii_only)
        ok = False
    return _result(ok, started, payload)


TRACE_VARIABLE = "_X_AMZN_TRACE_ID"


def set_trace_id(trace_id: str) -> None:
    """The call's trace header in `os.environ["_X_AMZN_TRACE_ID"]` while it runs, as Lambda's
    runtime sets it (what the X-Ray SDK and aws-lambda-powertools' Tracer read); unset for a
    call without one. Only Python's mapping is changed, not the C environment: glibc's
    setenv keeps every value it was ever given (a new one per call: the instance would grow
    by each call's trace id, and each call cost 15 us more under load). A process the
    handler starts therefore does not inherit it."""
    data = getattr(os.environ, "_data", None)
    if not isinstance(data, dict):  # not CPython's mapping: go through putenv after all
        if trace_id:
            os.environ[TRACE_VARIABLE] = trace_id
        else:
            os.environ.pop(TRACE_VARIABLE, None)
        return
    key = os.environ.encodekey(TRACE_VARIABLE)
    if trace_id:
        data[key] = os.environ.encodevalue(trace_id)
    else:
        data.pop(key, None)


def _runtime_failure(started: float, request_id: str, error_type: str, message: str, ascii_only: bool) -> Result:
    """A failed result whose error is the runtime's own (Lambda's error object, no stack trace)."""
    error = {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": []}
    return _result(False, started, lambda_json.dumps(error, ensure_ascii=ascii_only))


def results_ascii_only(init: Init) -> bool:
    """Whether this function's runtime escapes non-ASCII text in results (squall/lambda_json.py)."""
    return lambda_json.ascii_only(init.environ.get("AWS_EXECUTION_ENV", "").removeprefix("AWS_Lambda_"))


def _result(ok: bool, started: float, payload: bytes, exiting: bool = False) -> Result:
    duration_ms = (time.perf_counter() - started) * 1000
    max_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return Result(ok, duration_ms, max_rss_kb, exiting, payload)


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
