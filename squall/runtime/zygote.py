"""The zygote: a small process that has imported the runtime (and common heavy modules)
once, and forks a new instance process on request. A cold start then costs a fork
plus the import of the user's handler, not an interpreter start.

Runs as `python -I -S -c "...zygote.main()" SOCKET_FD PATH...`. It speaks on one
SOCK_SEQPACKET socket (one message per packet):

  platform -> zygote  {"spawn": n} with two fds attached (SCM_RIGHTS): the child's
                      stdin (read end) and stdout (write end)
  zygote -> platform  {"spawned": n, "pid": pid}  or  {"spawned": n, "error": text}
                      {"exited": pid, "status": waitpid status}   when a child ends

The zygote never runs user code: the child does, after the fork.
"""

from __future__ import annotations

import gc
import importlib
import os
import selectors
import signal
import socket
import sys
from typing import Any

import orjson

from squall.runtime.sandbox import oom_killed, remove_cgroups

MAX_FDS = 2


def preload(modules: list[str]) -> None:
    """Import what instances commonly need, so that children inherit it already imported."""
    import squall.runtime.bootstrap  # noqa: F401 - the instance loop itself

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module only costs its later import
            pass


def run_child(fd_in: int, fd_out: int, control: socket.socket) -> None:
    """In the forked child: become an instance reading fd_in and writing fd_out. Never returns."""
    try:
        control.close()
        os.setsid()
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
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


class Zygote:
    """The zygote's loop: spawn children on request, report their exits."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.wakeup_r, wakeup_w = os.pipe()
        os.set_blocking(wakeup_w, False)
        signal.set_wakeup_fd(wakeup_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    def send(self, message: dict[str, Any]) -> None:
        self.control.send(orjson.dumps(message))

    def spawn(self, request: dict[str, Any], fds: list[int]) -> None:
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            self.send({"spawned": request.get("spawn"), "error": f"expected 2 fds, got {len(fds)}"})
            return
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            self.send({"spawned": request.get("spawn"), "error": f"fork failed: {exc}"})
            return
        if pid == 0:
            run_child(fds[0], fds[1], self.control)
        for fd in fds:
            os.close(fd)
        self.send({"spawned": request["spawn"], "pid": pid})

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.send({"exited": pid, "status": status, "oom": oom_killed(pid)})
            remove_cgroups(pid)

    def serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.control, selectors.EVENT_READ, "control")
        selector.register(self.wakeup_r, selectors.EVENT_READ, "signal")
        while True:
            for key, _ in selector.select():
                if key.data == "signal":
                    os.read(self.wakeup_r, 512)
                    self.reap()
                    continue
                message, fds, _flags, _addr = socket.recv_fds(self.control, 65536, MAX_FDS)
                if not message:
                    return
                self.spawn(orjson.loads(message), list(fds))


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    modules = [m for m in os.environ.get("SQUALL_ZYGOTE_PRELOAD", "").split(",") if m]
    preload(modules)
    gc.collect()
    gc.freeze()
    try:
        Zygote(control).serve()
    except (BrokenPipeError, ConnectionResetError):
        pass
    os._exit(0)
