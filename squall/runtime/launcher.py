"""Starts instance processes. `InstanceLauncher` is the seam: `ZygoteLauncher` forks them
from a warm zygote (the default), `SubprocessLauncher` starts a fresh interpreter each time."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import sys
from pathlib import Path
from typing import Callable, Iterable, Protocol

from squall.runtime.cgroups import set_frozen
from squall.runtime.instance import Instance, InstanceSpec
from squall.runtime.zygote_protocol import (
    MAX_PACKET,
    Exited,
    Spawn,
    Spawned,
    ZygoteReport,
    report_from_zygote,
)
from squall.settings import ZYGOTE_PRELOAD

BOOT = "import sys; sys.path[:0] = sys.argv[1:]; from squall.runtime.bootstrap import main; main()"
ZYGOTE = "import sys; sys.path[:0] = sys.argv[2:]; from squall.runtime.zygote import main; main()"
ZYGOTE_ENV_KEYS = ("PATH", "LANG")


class InstanceLauncher(Protocol):
    """Makes a new, not yet initialized, instance process for `spec`."""

    async def start(self) -> None:
        """Get ready to launch (start the zygote) so that the first launch does not wait."""

    async def launch(self, spec: InstanceSpec) -> Instance: ...

    async def close(self) -> None: ...


def platform_sys_path() -> list[str]:
    """The import path an instance needs to find squall itself and the runtime's libraries."""
    import squall

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(squall.__file__)))
    found = [package_root] + [p for p in sys.path if p and os.path.isdir(p)]
    return list(dict.fromkeys(found))


def pid_namespace_prefix() -> list[str]:
    """`unshare --pid --fork --kill-child` (util-linux) when this process may make PID
    namespaces: the interpreter then runs as pid 1 of its own, as a zygote's children do, and
    dies (with everything it started) when `unshare` is killed. Used for sandboxed specs only.
    Empty where not allowed: the sandbox of such an instance then refuses to run."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        return []
    return [unshare, "--pid", "--fork", "--kill-child"]


class SubprocessLauncher:
    """Starts `python -I -S` with an explicit import path: no user site, no PYTHON* variables."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self.path = platform_sys_path()
        self.prefix = pid_namespace_prefix()

    async def start(self) -> None:
        return None

    async def launch(self, spec: InstanceSpec) -> Instance:
        process = await asyncio.create_subprocess_exec(
            *(self.prefix if spec.sandbox else ()), self.python, "-I", "-S", "-c", BOOT, *self.path,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, cwd=spec.code_dir, env=spec.environ,
            start_new_session=True)
        return Instance(process, spec)

    async def close(self) -> None:
        return None


class ForkedChild:
    """An instance process forked by the zygote: pipes we made, an exit status it reports."""

    def __init__(self, pid: int, stdin: asyncio.StreamWriter, stdout: asyncio.StreamReader,
                 exited: asyncio.Future[int]) -> None:
        self.pid = pid
        self.stdin: asyncio.StreamWriter | None = stdin
        self.stdout: asyncio.StreamReader | None = stdout
        self._exited = exited
        self.oom_check: Callable[[], bool] = lambda: False

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    @property
    def out_of_memory(self) -> bool:
        """Whether the kernel killed it for exceeding its memory limit (known once it exited)."""
        return self._exited.done() and self.oom_check()


def returncode_of(status: int) -> int:
    """A waitpid status as asyncio reports return codes: exit code, or -signal."""
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


class ZygoteProcess:
    """One zygote process (with its preload list): forks instances, restarted when it dies."""

    def __init__(self, python: str, path: list[str], preload: tuple[str, ...]) -> None:
        self.python = python
        self.path = path
        self.preload = preload
        self.process: asyncio.subprocess.Process | None = None
        self._socket: socket.socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._spawns: dict[int, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._next = 0
        self._starting = asyncio.Lock()
        self.out_of_memory: set[int] = set()
        """Pids of instances the kernel killed for exceeding their memory limit."""

    async def ensure_running(self) -> socket.socket:
        async with self._starting:
            if self._socket is not None and self.process is not None and self.process.returncode is None:
                return self._socket
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            env = {k: os.environ[k] for k in ZYGOTE_ENV_KEYS if k in os.environ}
            env[ZYGOTE_PRELOAD.name] = ZYGOTE_PRELOAD.text(self.preload)
            self.process = await asyncio.create_subprocess_exec(
                self.python, "-I", "-S", "-c", ZYGOTE, str(theirs.fileno()), *self.path,
                pass_fds=[theirs.fileno()], env=env, stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True)
            theirs.close()
            ours.setblocking(False)
            self._socket = ours
            self._reader = asyncio.ensure_future(self._read_messages(ours))
            return ours

    async def _read_messages(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            while packet := await loop.sock_recv(sock, MAX_PACKET):
                self._dispatch(report_from_zygote(packet))
        except (ConnectionError, OSError):
            pass
        self._lost(sock)

    def _dispatch(self, report: ZygoteReport) -> None:
        if isinstance(report, Exited):
            future = self._exits.pop(report.pid, None)
            if future is not None and not future.done():
                if report.oom:
                    self.out_of_memory.add(report.pid)
                future.set_result(returncode_of(report.status))
            return
        waiter = self._spawns.pop(report.request, None)
        if waiter is None or waiter.done():
            return
        if isinstance(report, Spawned):
            waiter.set_result(report.pid)
        else:
            waiter.set_exception(OSError(f"the zygote could not start an instance: {report.error}"))

    def _lost(self, sock: socket.socket) -> None:
        """The zygote died: fail pending spawns; children it cannot report on count as killed."""
        sock.close()
        if self._socket is sock:
            self._socket = None
        for waiter in self._spawns.values():
            if not waiter.done():
                waiter.set_exception(OSError("the zygote exited while starting an instance"))
        self._spawns.clear()
        for pid, future in self._exits.items():
            if not future.done():
                future.set_result(_wait_orphan(pid))
        self._exits.clear()

    async def fork(self, spec: InstanceSpec) -> Instance:
        sock = await self.ensure_running()
        loop = asyncio.get_running_loop()
        child_in, to_child = os.pipe()
        from_child, child_out = os.pipe()
        self._next += 1
        waiter: asyncio.Future[int] = loop.create_future()
        self._spawns[self._next] = waiter
        try:
            await _send_fds(sock, Spawn(self._next).to_bytes(), [child_in, child_out])
        finally:
            os.close(child_in)
            os.close(child_out)
        try:
            pid = await waiter
        except BaseException:
            os.close(to_child)
            os.close(from_child)
            raise
        self._exits[pid] = exited = loop.create_future()
        child = await _forked_child(pid, to_child, from_child, exited)
        child.oom_check = lambda: pid in self.out_of_memory
        return Instance(child, spec)

    async def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            self._reader.cancel()


class ZygoteLauncher:
    """Forks instances from zygotes: one per preload profile (`InstanceSpec.zygote`), so that
    functions that do not use boto3 fork from a small parent (forks cost more as the parent
    grows) and those that do find it already imported."""

    def __init__(self, python: str = sys.executable,
                 profiles: dict[str, tuple[str, ...]] | None = None) -> None:
        path = platform_sys_path()
        self.zygotes = {name: ZygoteProcess(python, path, preload)
                        for name, preload in (profiles or preload_profiles()).items()}

    async def start(self) -> None:
        await asyncio.gather(*(zygote.ensure_running() for zygote in self.zygotes.values()))

    async def launch(self, spec: InstanceSpec) -> Instance:
        zygote = self.zygotes.get(spec.zygote) or self.zygotes[BASE_PROFILE]
        return await zygote.fork(spec)

    async def close(self) -> None:
        await asyncio.gather(*(zygote.close() for zygote in self.zygotes.values()))


BASE_PROFILE, AWS_PROFILE = "base", "aws"
BASE_PRELOAD = ("json", "logging", "decimal", "datetime", "urllib.request", "http.client", "base64",
                "hashlib", "hmac", "uuid", "email.utils")
AWS_PRELOAD = ("boto3", "botocore.session")


AWS_IMPORT = re.compile(rb"^\s*(?:import|from)\s+(?:boto3|botocore)\b", re.MULTILINE)
MAX_SCANNED_BYTES = 20 * 2**20


def choose_profile(sys_path: Iterable[str]) -> str:
    """`aws` when the function's code imports boto3 or botocore and does not bundle its own
    copy (a bundled copy must win, as on Lambda); `base` otherwise."""
    folders = [Path(p) for p in sys_path]
    if any((folder / name).exists() for folder in folders for name in ("boto3", "botocore")):
        return BASE_PROFILE
    budget = MAX_SCANNED_BYTES
    for source in (f for folder in folders[:1] for f in sorted(folder.rglob("*.py"))):
        try:
            text = source.read_bytes()[:budget]
        except OSError:
            continue
        budget -= len(text)
        if AWS_IMPORT.search(text):
            return AWS_PROFILE
        if budget <= 0:
            break
    return BASE_PROFILE


def preload_profiles(extra: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """The zygotes a node runs: `base` (standard library) and `aws` (base + boto3, ...).
    `extra` (the server's SQUALL_ZYGOTE_PRELOAD) adds modules to both."""
    return {BASE_PROFILE: BASE_PRELOAD + extra, AWS_PROFILE: BASE_PRELOAD + AWS_PRELOAD + extra}


async def _send_fds(sock: socket.socket, message: bytes, fds: list[int]) -> None:
    """send_fds on a non-blocking socket: retry briefly while its buffer is full."""
    for _ in range(1000):
        try:
            socket.send_fds(sock, [message], fds)
            return
        except BlockingIOError:
            await asyncio.sleep(0.001)
    raise OSError("the zygote does not read its requests")


class _PipeReaderProtocol(asyncio.StreamReaderProtocol):
    """A StreamReaderProtocol whose transport closes (with its pipe) at the end of the stream:
    a pipe has no half-close to keep it open for, and an instance's pipe left open stayed
    until the garbage collector found it (a ResourceWarning)."""

    def eof_received(self) -> bool:
        super().eof_received()
        return False


async def _forked_child(pid: int, to_child: int, from_child: int, exited: asyncio.Future[int]) -> ForkedChild:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20, loop=loop)
    await loop.connect_read_pipe(lambda: _PipeReaderProtocol(reader, loop=loop),
                                 os.fdopen(from_child, "rb", buffering=0))
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin,
                                                        os.fdopen(to_child, "wb", buffering=0))
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return ForkedChild(pid, writer, reader, exited)


def _wait_orphan(pid: int) -> int:
    """Exit code for a child whose zygote is gone: kill it so no orphan keeps running (and
    thaw it: a child frozen by the cgroup freezer acts on SIGKILL only once thawed)."""
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    set_frozen(pid, False)
    return -9
