"""The zygote: a small process that has imported the runtime (and common heavy modules)
once, and forks a new instance process on request. A cold start then costs a fork
plus the import of the user's handler, not an interpreter start.

Runs as `python -I -S -c "...zygote.main()" SOCKET_FD PATH...`. It speaks on one
SOCK_SEQPACKET socket, one message of squall/runtime/zygote_protocol.py per packet:
`Spawn` (with the child's stdin and stdout attached) from the platform; `Spawned` or
`SpawnFailed` in answer, and `Exited` whenever a child ends.

The zygote never runs user code: the child does, after the fork.

Every child (spare or on request) is forked into a PID namespace of its own, as its pid 1
(`fork_in_new_pid_namespace`): the pids the zygote reports are the host's, the child's
cgroups are named by that host pid (`remember_host_pid`), and when the child dies the kernel
kills whatever it left in its namespace. When the node goes (the socket closes) the zygote
kills its children and thaws their freezer groups before it exits: a child frozen by the
cgroup freezer would not act on the SIGKILL its parent's death sends it.
"""

from __future__ import annotations

import gc
import importlib
import os
import selectors
import signal
import socket
import sys
import time

from squall.runtime.cgroups import join_own_cgroups, oom_killed, remember_host_pid, remove_cgroups
from squall.runtime import lambda_path
from squall.runtime.heap import fill_free_blocks
from squall.runtime.sandbox import die_with_parent, fork_in_new_pid_namespace
from squall.runtime.zygote_protocol import MAX_PACKET, Exited, Spawn, Spawned, SpawnFailed, request_from_node
from squall.settings import ZYGOTE_PRELOAD

MAX_FDS = 2
SPARE_INTERVAL = 0.01
SPARE_AFTER_SPAWN = 0.015
"""Seconds between handing the spare out and forking the next one: the new instance gets
the CPU (and the kernel's locks) for its init first. Forking at once made a cold start
over HTTP 5.0-5.5 ms at p50, waiting 10-20 ms made it 4.0-4.3 ms."""


def preload(modules: list[str]) -> None:
    """Import what instances commonly need, so that children inherit it already imported."""
    import squall.runtime.bootstrap  # noqa: F401 - the instance loop itself
    import squall.runtime.sandbox  # noqa: F401 - ctypes and libc: 3-4 ms of every cold start otherwise

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module only costs its later import
            pass


def detach(control: socket.socket, zygote: int, namespace: int) -> None:
    """First steps of every forked child: note its host pid, leave the zygote's socket,
    session, PID namespace descriptor and signals, and die with the zygote (`zygote` is a
    pidfd of it). The zygote ends when its node does (its socket closes); an instance
    frozen at that moment could never read the end of its pipe, and would stay stopped for
    good: SIGKILL reaches it (a cgroup-frozen one once the zygote has thawed it)."""
    remember_host_pid()
    os.umask(0o022)  # the node's own is 077 (its data dir is its alone); files a function makes are as usual
    control.close()
    os.close(namespace)
    os.setsid()
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    die_with_parent(zygote)


def become_instance(fd_in: int, fd_out: int) -> None:
    """Serve as an instance reading fd_in and writing fd_out (stdout and stderr). Never returns."""
    try:
        os.dup2(fd_in, 0)
        os.dup2(fd_out, 1)
        os.dup2(fd_out, 2)
        for fd in (fd_in, fd_out):
            if fd > 2:
                os.close(fd)
        from squall.runtime.bootstrap import main

        main(adopt_path=False)
    finally:
        os._exit(70)


def run_child(fd_in: int, fd_out: int, control: socket.socket, zygote: int, namespace: int) -> None:
    """In a child forked on request: become an instance at once. Never returns."""
    try:
        detach(control, zygote, namespace)
    finally:
        become_instance(fd_in, fd_out)


def run_spare(link: socket.socket, control: socket.socket, zygote: int, namespace: int) -> None:
    """In a child forked ahead of time: do now what is slow and needs no spec (joining
    fresh cgroups costs an RCU grace period, 10+ ms, on cgroup v1), then wait for the
    pipes of the instance it will become. Never returns."""
    try:
        detach(control, zygote, namespace)
        join_own_cgroups()
        _message, fds, _flags, _addr = socket.recv_fds(link, 16, MAX_FDS)
        link.close()
        if len(fds) != 2:
            os._exit(0)
    except BaseException:  # noqa: BLE001 - a spare that cannot start simply ends
        os._exit(0)
    become_instance(fds[0], fds[1])


class Zygote:
    """The zygote's loop: spawn children on request, report their exits."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.pidfd = os.pidfd_open(os.getpid())
        """A pidfd of the zygote itself, inherited by every child (`die_with_parent`)."""
        self.pid_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self.children: set[int] = set()
        """Host pids of the children not reaped yet (spares included)."""
        self.wakeup_r, wakeup_w = os.pipe()
        os.set_blocking(wakeup_w, False)
        signal.set_wakeup_fd(wakeup_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.spare: tuple[int, socket.socket] | None = None
        """(pid, link) of the child forked ahead of time for the next spawn, if any."""
        self.next_spare_at = 0.0
        """Spares are forked at most every SPARE_INTERVAL seconds, so one that cannot live
        (or a fork that fails) never turns the loop into a fork loop."""

    def spare_wait(self) -> float | None:
        """How long the loop may sleep before a spare is due (None: one is ready)."""
        return None if self.spare else max(0.0, self.next_spare_at - time.monotonic())

    def fork_spare(self) -> None:
        """Keep one child forked ahead of time; the next spawn takes it."""
        if self.spare is not None or time.monotonic() < self.next_spare_at:
            return
        self.next_spare_at = time.monotonic() + SPARE_INTERVAL
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = fork_in_new_pid_namespace(self.pid_namespace)
        except OSError:
            ours.close()
            theirs.close()
            return
        if pid == 0:
            ours.close()
            run_spare(theirs, self.control, self.pidfd, self.pid_namespace)
        theirs.close()
        self.children.add(pid)
        self.spare = (pid, ours)

    def take_spare(self, fds: list[int]) -> int | None:
        """Hand `fds` to the spare child; its pid, or None when there is no live spare."""
        if self.spare is None:
            return None
        pid, link = self.spare
        self.spare = None
        try:
            socket.send_fds(link, [b"go"], fds)
        except OSError:
            return None
        finally:
            link.close()
        return pid

    def send(self, message: Spawned | SpawnFailed | Exited) -> None:
        self.control.send(message.to_bytes())

    def spawn(self, request: Spawn, fds: list[int]) -> None:
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            self.send(SpawnFailed(request.request, f"expected 2 fds, got {len(fds)}"))
            return
        pid = self.take_spare(fds)
        self.next_spare_at = max(self.next_spare_at, time.monotonic() + SPARE_AFTER_SPAWN)
        if pid is None:
            try:
                pid = fork_in_new_pid_namespace(self.pid_namespace)
            except OSError as exc:
                for fd in fds:
                    os.close(fd)
                self.send(SpawnFailed(request.request, f"fork failed: {exc}"))
                return
            if pid == 0:
                run_child(fds[0], fds[1], self.control, self.pidfd, self.pid_namespace)
            self.children.add(pid)
        for fd in fds:
            os.close(fd)
        self.send(Spawned(request.request, pid))

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            if self.spare is not None and self.spare[0] == pid:
                self.spare[1].close()
                self.spare = None
            self.send(Exited(pid, status, oom_killed(pid)))
            remove_cgroups(pid)

    def serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.control, selectors.EVENT_READ, "control")
        selector.register(self.wakeup_r, selectors.EVENT_READ, "signal")
        while True:
            ready = selector.select(timeout=self.spare_wait())
            if not ready:  # nothing waiting: a good moment to fork the next spare
                self.fork_spare()
                continue
            for key, _ in ready:
                if key.data == "signal":
                    os.read(self.wakeup_r, 512)
                    self.reap()
                    continue
                packet, fds, _flags, _addr = socket.recv_fds(self.control, MAX_PACKET, MAX_FDS)
                if not packet:
                    return
                self.spawn(request_from_node(packet), list(fds))

    def end_children(self) -> None:
        """The node is gone: kill every child and what it started (its cgroups, thawed)."""
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in self.children:
            remove_cgroups(pid)


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    preload(list(ZYGOTE_PRELOAD.read()))  # the whole list of this zygote, set by the node
    lambda_path.prepare()  # what each instance will drop from the import path, worked out once
    gc.collect()
    gc.freeze()
    fill_free_blocks()
    zygote = Zygote(control)
    try:
        zygote.serve()
    except (BrokenPipeError, ConnectionResetError):
        pass
    zygote.end_children()
    os._exit(0)
