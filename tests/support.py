"""Helpers for end-to-end tests: real `squall server` processes on free ports, the real CLI."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import psutil

SQUALL = [sys.executable, "-m", "squall.cli.main"]


class E2EGuard:
    """Keeps the unit tier (`pytest -m "not e2e"`) free of squall servers and CLI processes.

    tests/conftest.py calls `enter()` before each test's fixtures are set up, saying whether the
    test is marked `e2e`; `SquallServer.start()` and `SquallServer.cli()` call `check()`, which
    fails a test that is not. Outside pytest (the scripts in bench/) nothing is entered and
    everything is allowed."""

    def __init__(self) -> None:
        self.refusing: str | None = None  # the id of the running test that is not marked e2e

    def enter(self, test_id: str, *, e2e: bool) -> None:
        self.refusing = None if e2e else test_id

    def leave(self) -> None:
        self.refusing = None

    def check(self, what: str) -> None:
        if self.refusing is not None:
            raise RuntimeError(
                f"{self.refusing} {what} but is not marked e2e: mark the test `@pytest.mark.e2e` (or its "
                f"module `pytestmark = pytest.mark.e2e`) so that the unit tier starts no servers")


E2E_GUARD = E2EGuard()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_project(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (relative path -> text, dedented) under `root`; returns `root`."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def page_site(body: str, *, triggers: tuple[str, ...] = ('- http: "GET /page"',), secrets: str = "",
              imports: str = "") -> dict[str, str]:
    """Project `site`: function `page` answers 200 with the Python expression `body` (which may use
    `context`), reached by `triggers` (YAML list items), listing `secrets` (YAML, e.g. "[GREETING]")."""
    listed = f"\n    secrets: {secrets}" if secrets else ""
    routes = "".join(f"\n      {line}" for trigger in triggers for line in trigger.splitlines())
    return {
        "squall.yaml": f"name: site\nfunctions:\n  page:\n    handler: app.handler{listed}\n    triggers:{routes}\n",
        "app.py": f"{imports}def handler(event, context):\n    return {{'statusCode': 200, 'body': {body}}}\n",
    }


def wait_until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.TransportError, AssertionError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


PORT_ATTEMPTS = 3
"""How many ports a server is started on before a port taken by another process fails the test."""


class PortTaken(RuntimeError):
    """The free port a server was given was taken before it could bind it."""


class SquallServer:
    """A `squall server` subprocess; `cli()` runs the squall CLI against it."""

    def __init__(self, data_dir: Path, *, store: str | None = None, token: str = "test-admin-token",
                 command: str = "server", project: Path | None = None,
                 environ: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.environ = environ or {}
        self.store = store
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = command
        self.project = project
        self.process: subprocess.Popen[bytes] | None = None
        self._output_start = 0  # where this start's output begins in the log (earlier starts append to it)
        self.log_path = data_dir.parent / f"{data_dir.name}-server-{self.port}.log"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SQUALL_")}
        env.update(SQUALL_URL=self.url, SQUALL_TOKEN=self.token, **self.environ)
        env.update(extra)
        return env

    def start(self) -> SquallServer:
        """Start the server and wait until it answers. The port `free_port()` found can be taken by
        another process (a parallel test's server or client) before the server binds it: then the
        server starts again on another port."""
        E2E_GUARD.check(f"starts a squall {self.command}")
        for _ in range(PORT_ATTEMPTS - 1):
            try:
                return self._start()
            except PortTaken:
                self._move_to_a_free_port()
        return self._start()

    def _start(self) -> SquallServer:
        if self.command == "dev":
            args = [*SQUALL, "dev", str(self.project), "--port", str(self.port), "--data", str(self.data_dir)]
        else:
            args = [*SQUALL, "server", "--data", str(self.data_dir), "--port", str(self.port)]
            if self.store:
                args += ["--store", self.store]
        log = open(self.log_path, "ab")
        self._output_start = log.tell()
        self.process = subprocess.Popen(args, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(self._healthy, timeout=30)
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            if b"address already in use" in self.log_path.read_bytes()[self._output_start:]:
                self.process = None
                raise PortTaken(f"port {self.port} was taken before the server could bind it")
            raise RuntimeError(f"squall server exited with {self.process.returncode}:\n{self.output()}")
        if httpx.get(f"{self.url}/_squall/health", timeout=2).status_code != 200:
            return False
        return self._listening()  # not another server's answer from a port taken from under us

    def _listening(self) -> bool:
        assert self.process is not None
        try:
            sockets = psutil.Process(self.process.pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            return False
        return any(s.status == psutil.CONN_LISTEN and s.laddr.port == self.port for s in sockets)

    def _move_to_a_free_port(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> SquallServer:
        self.stop()
        self._move_to_a_free_port()
        return self.start()

    def cli(self, *args: str, input: str | None = None, check: bool = False,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        E2E_GUARD.check(f"runs `squall {' '.join(args[:1])}` as a process")
        result = subprocess.run([*SQUALL, *args], env=self.env(), capture_output=True, text=True,
                                input=input, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"squall {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"authorization": f"Bearer {self.token}"}, timeout=30)

    def invoke(self, function: str, event: dict[str, Any] | None = None, *, stage: str = "",
               timeout: float = 60) -> dict[str, Any]:
        """The platform API's invocation envelope (`ok`, `payload`, `requestId`, ...) of one
        synchronous call of `function` (in `stage`, when given)."""
        prefix = f"/_squall/stages/{stage}" if stage else ""
        with self.api() as api:
            response = api.post(f"{prefix}/_squall/api/functions/{function}/invoke", json=event or {},
                                timeout=timeout)
        response.raise_for_status()
        return dict(response.json())

    def payload(self, function: str, event: dict[str, Any] | None = None, **options: Any) -> Any:
        """What `function` returned; fails when the call did not succeed."""
        envelope = self.invoke(function, event, **options)
        assert envelope["ok"], envelope
        return envelope["payload"]

    def logs(self, function: str, **params: Any) -> list[dict[str, Any]]:
        with self.api() as api:
            response = api.get(f"/_squall/api/functions/{function}/logs", params=params)
        response.raise_for_status()
        return list(response.json()["logs"])

    def wait_logs(self, function: str, request_id: str, contains: str = "REPORT RequestId") -> list[dict[str, Any]]:
        """The stored lines of one invocation, once its REPORT line has been written."""
        return list(wait_until(lambda: (lines := self.logs(function, request_id=request_id))
                               and any(contains in line["message"] for line in lines) and lines))


@contextlib.contextmanager
def serving(root: Path, project: dict[str, str], **options: Any) -> Iterator[SquallServer]:
    """A server on `root/data` with `project` (written to `root/project`) deployed; stopped after."""
    node = SquallServer(root / "data", **options).start()
    try:
        node.cli("deploy", str(write_project(root / "project", project)), check=True)
        yield node
    finally:
        node.stop()


def plant_admin_token(data_dir: Path, value: str = "admin-secret-on-disk") -> Path:
    """Write an admin token file (mode 0600) in a data dir the server has not made yet, as a
    secret that hostile code must not be able to read; returns its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    token = data_dir / "admin-token"
    token.write_text(value + "\n")
    token.chmod(0o600)
    return token


def copy_example(name: str, dest: Path) -> Path:
    source = Path(__file__).resolve().parent.parent / "examples" / name
    shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns(".squall", "__pycache__"))
    return dest / name


RECORDER_CLIENT = """
import json, os, time, urllib.request

def post(what):
    request = urllib.request.Request(os.environ["RECORDER"], data=json.dumps(what).encode(), method="POST")
    urllib.request.urlopen(request, timeout=10).read()
"""
"""Function code that POSTs what it did to the Recorder named by its RECORDER env var."""


class Recorder:
    """A small HTTP server that functions POST to: what they did, seen from outside the
    platform (`bodies` in arrival order). Used as `with Recorder() as recorder:`."""

    def __init__(self, status: int = 204) -> None:
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with recorder._lock:
                    recorder.bodies.append(body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 256  # the default 5 refuses a burst of function calls
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        # leaving the block waits for the serving loop to notice: poll often so that it returns at once
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def json(self) -> list[Any]:
        with self._lock:
            return [json.loads(body) for body in self.bodies]


class PeakMemory:
    """The highest resident memory of a process (with its descendants when `tree`) seen
    while the block runs, sampled on a thread:

        with PeakMemory(server.process.pid) as memory:
            attack()
        assert memory.growth_mb < 200
    """

    def __init__(self, pid: int, *, tree: bool = False, interval: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.tree = tree
        self.interval = interval
        self.before = self.rss()
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def rss(self) -> int:
        processes = [self.process, *(self.process.children(recursive=True) if self.tree else [])]
        total = 0
        for process in processes:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.before) / (1024 * 1024)
