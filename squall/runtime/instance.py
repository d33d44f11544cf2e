"""The platform's handle on one instance process: init it, invoke it, read its output, kill it."""

from __future__ import annotations

import asyncio
import enum
import os
import secrets
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from squall.runtime.cgroups import open_freezer, write_frozen
from squall.runtime.output import OutputCollector
from squall.runtime.protocol import (
    LENGTHS,
    MAX_PAYLOAD_BYTES,
    NONCE_SIZE,
    FrameTooLarge,
    Init,
    InitFailed,
    InstanceMessage,
    Invoke,
    ProtocolError,
    Ready,
    Result,
    Shutdown,
    check_lengths,
    decode_lengths,
    from_instance,
)
from squall.types import LogLine

READ_CHUNK = 256 * 1024
SHUTDOWN_GRACE = 2.0
ON_DEMAND, PROVISIONED = "on-demand", "provisioned-concurrency"
"""AWS_LAMBDA_INITIALIZATION_TYPE of an instance started for a call, and of one kept ready."""
FREEZE_AFTER = 0.05
"""Seconds an instance stays idle before it is frozen. Freezing at once would put two
signals and a stop/continue of every thread on the path of back-to-back calls
(measured: warm p50 86 -> 138 us, p99 0.15 -> 2.4 ms); a busy instance is never frozen."""


class InstanceState(str, enum.Enum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    DEAD = "dead"


@dataclass(frozen=True)
class InstanceSpec:
    """Everything an instance needs to run one version of one function."""

    function: str
    version: int
    handler: str
    code_dir: str
    memory: int
    timeout: float
    environ: dict[str, str] = field(default_factory=dict)
    sys_path: tuple[str, ...] = ()
    log_group: str = ""
    log_stream: str = ""
    zygote: str = "base"
    """Which zygote forks it: "base", or "aws" (boto3 already imported)."""
    concurrency: int = 100
    min_instances: int = 0
    idle_timeout: float = 300.0
    init_timeout: float = 10.0
    initializer: str | None = None
    shutdown: str | None = None
    sandbox: dict[str, Any] = field(default_factory=dict)
    """Limits and isolation the instance applies to itself before importing user code
    (see squall/runtime/sandbox.py); empty means none."""
    secrets: tuple[str, ...] = ()
    """Which variables of `environ` hold secrets (their values are masked in the logs)."""
    init_error: tuple[str, str] | None = None
    """(errorType, errorMessage) when the node knows that no instance can start (a listed
    secret is not set): the pool then fails the start with it, without a process."""
    arn: str = ""
    """The function's ARN, which its initializer and shutdown hook see as
    `invoked_function_arn` (each invocation comes with the ARN it was called by)."""

    @property
    def key(self) -> tuple[str, int]:
        return (self.function, self.version)


@dataclass
class InvokeOutcome:
    """What one invocation produced. `payload` is the result JSON or Lambda's error object."""

    ok: bool
    payload: bytes
    logs: list[LogLine]
    duration_ms: float
    max_memory_mb: int = 0
    init_ms: float | None = None

    def error(self) -> dict[str, Any]:
        return dict(orjson.loads(self.payload)) if not self.ok else {}


class InstanceProcess(Protocol):
    """What the platform holds of a running instance process (asyncio.subprocess.Process
    fits; so does a child forked by the zygote)."""

    pid: int
    stdin: asyncio.StreamWriter | None
    stdout: asyncio.StreamReader | None

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...


class InstanceDied(Exception):
    """The instance process ended while the platform was waiting for it."""


class Instance:
    """One live instance process. Not safe for two concurrent invocations (the pool ensures that)."""

    def __init__(self, process: InstanceProcess, spec: InstanceSpec) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self.spec = spec
        self.pid = process.pid
        self.state = InstanceState.STARTING
        self.created_at = time.time()
        self.last_used = time.monotonic()
        self.invocations = 0
        self.init_ms: float | None = None
        self.max_memory_mb = 0
        self.frozen = False
        self.recycle_after_call = False
        self.request_id: str | None = None
        """The invocation running now, if any."""
        self._freeze_timer: asyncio.TimerHandle | None = None
        self._freezer: int | None = None
        """Its cgroup freezer group's `freezer.state`, open from its init to its end: a thaw
        on the path of a warm call is one write, not an open, a write and a close."""
        self._writer = process.stdin
        self._reader = process.stdout
        self._nonce = secrets.token_hex(NONCE_SIZE // 2).encode()
        self._buffer = bytearray()
        self._output = OutputCollector()

    # -- lifecycle --------------------------------------------------------
    async def init(self, timeout: float, initialization: str = ON_DEMAND) -> InvokeOutcome:
        """Send the spec and wait for `ready`; on failure the outcome holds the init error.
        `initialization` is the instance's AWS_LAMBDA_INITIALIZATION_TYPE (ON_DEMAND: started
        for a call or a deploy's check; PROVISIONED: one of the function's `min_instances`)."""
        spec = self.spec
        init = Init(
            nonce=self._nonce.decode(), function=spec.function, version=str(spec.version),
            handler=spec.handler, code_dir=spec.code_dir, memory=spec.memory,
            environ={**spec.environ, "AWS_LAMBDA_INITIALIZATION_TYPE": initialization},
            sys_path=spec.sys_path, log_group=spec.log_group, log_stream=spec.log_stream,
            sandbox=spec.sandbox, initializer=spec.initializer, shutdown=spec.shutdown,
            deadline_ms=int((time.time() + timeout) * 1000), arn=spec.arn)
        started = time.perf_counter()
        self._writer.write(init.to_bytes())
        try:
            reply = await asyncio.wait_for(self._read_message(), timeout)
            if not isinstance(reply, (Ready, InitFailed)):
                raise ProtocolError(reply.TAG, None, "came before the instance was ready")
        except (asyncio.TimeoutError, InstanceDied, ConnectionError, FrameTooLarge, ProtocolError) as exc:
            return await self._failed_init(exc, timeout, started)
        self.init_ms = reply.init_ms
        if isinstance(reply, InitFailed):
            self.kill()
            return InvokeOutcome(False, reply.error, self._output.finish(), 0.0, init_ms=self.init_ms)
        self.state = InstanceState.IDLE
        self._freezer = open_freezer(self.pid)  # the group exists once the instance is ready
        self.freeze_when_idle()
        return InvokeOutcome(True, b"null", self._output.finish(), 0.0, init_ms=self.init_ms)

    async def _failed_init(self, exc: BaseException, timeout: float, started: float) -> InvokeOutcome:
        self.kill()
        init_ms = (time.perf_counter() - started) * 1000
        if isinstance(exc, asyncio.TimeoutError):
            message = f"Init timed out after {timeout:.2f} seconds"
        elif isinstance(exc, FrameTooLarge):
            message = f"Runtime sent a {exc}"
        elif isinstance(exc, ProtocolError):
            message = f"Runtime sent an {exc}"
        else:
            message = f"Runtime exited during init: {await self._exit_reason()}"
        error = {"errorMessage": message, "errorType": "Runtime.InitError", "requestId": "", "stackTrace": []}
        return InvokeOutcome(False, orjson.dumps(error), self._output.finish(), 0.0, init_ms=init_ms)

    def kill(self) -> None:
        """Kill the process at once (SIGKILL); safe to call twice. Its death ends its PID
        namespace, and with it every process it started. A frozen instance is thawed after
        the signal: the cgroup freezer holds SIGKILL until then."""
        self.state = InstanceState.DEAD
        if self._freeze_timer is not None:
            self._freeze_timer.cancel()
            self._freeze_timer = None
        if self.process.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.frozen:
            self._set_frozen(False)
            self.frozen = False
        if self._freezer is not None:
            os.close(self._freezer)
            self._freezer = None
        transport = getattr(self._writer, "transport", None)
        if transport is not None:
            transport.close()

    async def stop(self, grace: float = SHUTDOWN_GRACE) -> list[LogLine]:
        """End an idle instance: run its `shutdown` hook (at most `grace` seconds) if it has
        one, then kill it. Returns what the hook printed."""
        if self.spec.shutdown and self.state is InstanceState.IDLE:
            self.thaw()
            deadline_ms = int((time.time() + grace) * 1000)
            try:
                self._writer.write(Shutdown(deadline_ms).to_bytes())
                await asyncio.wait_for(self._read_message(), grace)  # `bye`, or whatever it is
            except (asyncio.TimeoutError, InstanceDied, ConnectionError, FrameTooLarge, ProtocolError):
                pass
        self.kill()
        await self.process.wait()
        return self._output.finish()

    def freeze_when_idle(self) -> None:
        """Freeze the instance once it has been idle for FREEZE_AFTER seconds. One timer is
        pending at a time: a call that ends before it fires leaves it be, and the timer looks
        again at `last_used` (cheaper than cancelling and making a timer on every call)."""
        if self._freeze_timer is None:
            self._freeze_timer = asyncio.get_running_loop().call_later(FREEZE_AFTER, self._freeze_if_idle)

    def _freeze_if_idle(self) -> None:
        self._freeze_timer = None
        if self.state is not InstanceState.IDLE:
            return  # busy (its end arms the timer again) or dead
        idle_for = time.monotonic() - self.last_used
        if idle_for >= FREEZE_AFTER:
            self.freeze()
        else:
            self._freeze_timer = asyncio.get_running_loop().call_later(FREEZE_AFTER - idle_for,
                                                                       self._freeze_if_idle)

    def freeze(self) -> None:
        """Freeze the instance between invocations (as hosted platforms do): background
        threads and every process it started get no CPU while it is idle."""
        self._set_frozen(True)
        self.frozen = True

    def thaw(self) -> None:
        if self.frozen:
            self._set_frozen(False)
            self.frozen = False

    def _set_frozen(self, frozen: bool) -> None:
        """The instance's cgroup freezer group holds all its processes, those that left its
        session or process group too; without one (freezer not writable, or an instance
        not forked by the zygote) its process group is stopped and continued instead."""
        if self._freezer is None or not write_frozen(self._freezer, frozen):
            self._signal_group(signal.SIGSTOP if frozen else signal.SIGCONT)

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    # -- invocation ---------------------------------------------------------
    async def invoke(self, request_id: str, event: bytes, timeout: float, arn: str, *, version: str = "$LATEST",
                     trace_id: str = "", client_context: str | None = None) -> InvokeOutcome:
        """Run one invocation; on timeout or death the instance is killed and the outcome says why.
        `version`, `trace_id` and `client_context` are what the context and `_X_AMZN_TRACE_ID`
        show of the call (squall/runtime/protocol.py, `Invoke`)."""
        self.state = InstanceState.BUSY
        if self.frozen:
            self.thaw()
        self.invocations += 1
        self.request_id = request_id
        message = Invoke(request_id, int((time.time() + timeout) * 1000), arn, version, trace_id, client_context, event)
        started = time.perf_counter()
        deadline = Deadline(timeout)  # a timer handle, not asyncio.timeout's context per call
        try:
            self._writer.write(message.to_bytes())
            reply = await self._read_message()
            if not isinstance(reply, Result):
                raise ProtocolError(reply.TAG, None, "came where a result was due")
        except asyncio.CancelledError:
            if not deadline.expired():
                raise
            self.kill()
            await self._collect_rest()
            return self._platform_error(request_id, started, "Sandbox.Timedout",
                                        f"Task timed out after {timeout:.2f} seconds")
        except FrameTooLarge:  # killed before its bytes are read: the node never holds them
            self.kill()
            await self._collect_rest()
            return self._platform_error(request_id, started, "Function.ResponseSizeTooLarge",
                                        "Response payload size exceeded maximum allowed payload size "
                                        f"({MAX_PAYLOAD_BYTES} bytes).")
        except ProtocolError as exc:  # only a function that writes frames itself can cause one
            self.kill()
            await self._collect_rest()
            return self._platform_error(request_id, started, "Runtime.ProtocolError",
                                        f"RequestId: {request_id} Error: Runtime sent an {exc}")
        except (InstanceDied, ConnectionError, RuntimeError):  # uvloop: RuntimeError on a closed pipe
            self.kill()
            await self._collect_rest()
            reason = await self._exit_reason()
            return self._platform_error(request_id, started, "Runtime.ExitError",
                                        f"RequestId: {request_id} Error: Runtime exited with error: {reason}")
        finally:
            deadline.cancel()
        return self._finish(reply)

    def _finish(self, result: Result) -> InvokeOutcome:
        self.request_id = None
        self.max_memory_mb = max(self.max_memory_mb, result.max_rss_kb // 1024)
        self.last_used = time.monotonic()
        if result.exiting:
            self.kill()
        else:
            self.state = InstanceState.IDLE
            self.freeze_when_idle()
        return InvokeOutcome(result.ok, result.payload, self._output.finish(), result.duration_ms,
                             self.max_memory_mb)

    def _platform_error(self, request_id: str, started: float, error_type: str, message: str) -> InvokeOutcome:
        self.request_id = None
        error = {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": []}
        duration_ms = (time.perf_counter() - started) * 1000
        return InvokeOutcome(False, orjson.dumps(error), self._output.finish(), duration_ms, self.max_memory_mb)

    async def _exit_reason(self) -> str:
        try:
            code = await asyncio.wait_for(self.process.wait(), 2.0)
        except asyncio.TimeoutError:
            return "the instance stopped answering"
        if getattr(self.process, "out_of_memory", False):
            return f"{describe_exit(code)} (out of memory: more than the {self.spec.memory} MB limit)"
        return describe_exit(code)

    # -- reading the output stream ------------------------------------------
    async def _collect_rest(self, wait: float = 0.5) -> None:
        """After a kill: keep what the process printed before it died as log lines (the output
        cap applies; a process it left behind that keeps writing is read for `wait` seconds
        at most, one chunk at a time)."""
        deadline = time.monotonic() + wait
        try:
            while (left := deadline - time.monotonic()) > 0:
                self._output.feed(self._buffer)
                self._buffer.clear()
                await asyncio.wait_for(self._fill(), left)
        except (asyncio.TimeoutError, InstanceDied, ConnectionError):
            pass
        self._output.feed(self._buffer)
        self._buffer.clear()

    async def _fill(self) -> None:
        chunk = await self._reader.read(READ_CHUNK)
        if not chunk:
            raise InstanceDied()
        self._buffer += chunk

    async def _read_message(self) -> InstanceMessage:
        """Collect output as log lines until the next frame, then decode and return its message.
        Raises FrameTooLarge, from the frame's lengths alone, for a frame over the protocol's
        limits, and ProtocolError for one that is not a message an instance sends."""
        buffer, nonce = self._buffer, self._nonce
        keep = len(nonce) - 1
        while True:
            start = buffer.find(nonce)
            if start >= 0:
                break
            if len(buffer) > keep:
                self._output.feed(buffer[: len(buffer) - keep])
                del buffer[: len(buffer) - keep]
            await self._fill()
        self._output.feed(buffer[:start])
        del buffer[:start]
        fixed = len(nonce) + LENGTHS.size
        while len(buffer) < fixed:
            await self._fill()
        head_len, payload_len = decode_lengths(memoryview(buffer)[len(nonce):fixed])
        try:
            check_lengths(head_len, payload_len)
        except FrameTooLarge:
            buffer.clear()  # the frame's start is not output to log
            raise
        while len(buffer) < fixed + head_len + payload_len:
            await self._fill()
        head = bytes(buffer[fixed:fixed + head_len])
        payload = bytes(buffer[fixed + head_len:fixed + head_len + payload_len])
        del buffer[:fixed + head_len + payload_len]
        return from_instance(head, payload)


class Deadline:
    """Cancels the running task `seconds` from now, unless cancelled first: asyncio.timeout
    without its context manager's per-call cost. `expired()` tells a cancellation it caused
    (and takes it back, so the task can go on) from one that came from elsewhere."""

    __slots__ = ("_task", "_handle", "_fired")

    def __init__(self, seconds: float) -> None:
        self._task = asyncio.current_task()
        self._fired = False
        self._handle = asyncio.get_running_loop().call_later(seconds, self._fire)

    def _fire(self) -> None:
        self._fired = True
        if self._task is not None:
            self._task.cancel()

    def expired(self) -> bool:
        if self._fired and self._task is not None:
            self._task.uncancel()
        return self._fired

    def cancel(self) -> None:
        self._handle.cancel()


def describe_exit(returncode: int) -> str:
    """`exit status 3` or `signal: segmentation fault`, as Lambda words a runtime's death."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"
    words = {"SIGSEGV": "segmentation fault", "SIGKILL": "killed", "SIGABRT": "aborted",
             "SIGTERM": "terminated", "SIGBUS": "bus error", "SIGFPE": "floating point exception"}
    return f"signal: {words.get(name, name)}"
