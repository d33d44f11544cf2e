"""End to end: instances are isolated from each other and from every stage's data (issue 12).

Hostile functions on a real `squall server` try to read the root data dir from a stage,
read or trace a sibling function's child process, signal processes of other functions,
reach the host's Unix sockets (by path under /run and /dev/log, abstract ones, another
function's), and leave a `setsid` grandchild running while their instance
is frozen or after it is gone. Every attack runs while a bystander function keeps answering
(tests/hostile/bystander.py)."""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from tests.hostile.bystander import bystander
from tests.support import SquallServer, wait_until, write_project

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # measures a server under attack: runs alone

APP = '''
import ctypes, errno, os, socket, subprocess, sys, time

libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH, PTRACE_DETACH = 16, 17


def attempt(fn):
    try:
        return {"ok": True, "value": fn()}
    except OSError as exc:
        return {"ok": False, "errno": exc.errno, "error": repr(exc)}


def read(path):
    with open(path, "rb") as handle:
        return handle.read().decode(errors="replace")


def ptrace(pid):
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    libc.ptrace(PTRACE_DETACH, pid, None, None)
    return "attached"


def connect_unix(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        sock.connect(path)
        return "connected"


def steady(event, context):
    return {"statusCode": 200, "body": "steady"}


def whoami(event, context):
    return {"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid()}


def hold(event, context):
    """Keep a child (dumpable after execve) running for the sibling to attack."""
    subprocess.run(["sleep", str(event["seconds"])], check=True)
    return {"uid": os.getuid()}


def spy(event, context):
    """Reach another function's process by its host pid, and list what /proc shows."""
    pid = event["pid"]
    return {
        "uid": os.getuid(),
        "environ": attempt(lambda: read(f"/proc/{pid}/environ")),
        "cwd": attempt(lambda: os.readlink(f"/proc/{pid}/cwd")),
        "root": attempt(lambda: os.readlink(f"/proc/{pid}/root")),
        "ptrace": attempt(lambda: ptrace(pid)),
        "signal": attempt(lambda: os.kill(pid, 0)),
        "others": {str(other): attempt(lambda other=other: os.kill(other, 0)) for other in event["others"]},
        "visible": sorted(int(name) for name in os.listdir("/proc") if name.isdigit()),
    }


def snoop(event, context):
    """From a stage: the server's data dir, the root store (and its sdk_signing_key)."""
    data = event["data"]
    return {
        "store": attempt(lambda: read(data + "/squall.db")[:16]),
        "listing": attempt(lambda: sorted(os.listdir(data))),
        "stage_store": attempt(lambda: read(data + "/stages/staging/squall.db")[:16]),
        "root_code": attempt(lambda: sorted(os.listdir(data + "/code"))),
        "own_code": attempt(lambda: sorted(os.listdir(os.environ["LAMBDA_TASK_ROOT"]))),
    }


def sockets(event, context):
    return {path: attempt(lambda path=path: connect_unix(path)) for path in event["paths"]}


def datagram(event, context):
    def send():
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            return sock.sendto(b"<13>squall: hello", event["path"])
    return attempt(send)


LISTENERS = []


def listen(event, context):
    """Listen on an abstract Unix socket and keep it open (the instance stays warm)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(event["name"])
    sock.listen(16)
    LISTENERS.append(sock)
    return {"listening": event["name"]}


def ipc(event, context):
    """Make a System V shared memory segment any uid may open, or look for one by its key."""
    libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
    flags = 0o1000 | 0o666 if event.get("create") else 0  # IPC_CREAT
    ident = libc.shmget(event["key"], 4096 if event.get("create") else 0, flags)
    return {"id": ident, "errno": ctypes.get_errno() if ident < 0 else 0}


def spawn(event, context):
    """Leave a grandchild in a session of its own, waking up in a loop, and return (or end
    the instance, when asked)."""
    if event.get("exit"):
        os._exit(3)
    subprocess.Popen(["setsid", sys.executable, "-c",
                      "import time\\nwhile True:\\n    time.sleep(0.01)\\n"],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {"uid": os.getuid()}
'''

PROJECT = {
    "squall.yaml": """
        name: isolation
        stages:
          staging: {}
        buckets:
          uploads: {}
        functions:
          steady:
            handler: app.steady
            triggers: [{http: "GET /steady"}]
          whoami:
            handler: app.whoami
          hold:
            handler: app.hold
            timeout: 30
            env: {HOLDER_SECRET: "the-holders-secret"}
          spy:
            handler: app.spy
          snoop:
            handler: app.snoop
          sockets:
            handler: app.sockets
          listener:
            handler: app.listen
          datagram:
            handler: app.datagram
          offline:
            handler: app.sockets
            network: none
          spawn:
            handler: app.spawn
          ipc_maker:
            handler: app.ipc
          ipc_finder:
            handler: app.ipc
    """,
    "app.py": APP,
}


@contextlib.contextmanager
def started_server(**environ: str) -> Iterator[SquallServer]:
    """A server with the project deployed to its root and to the `staging` stage. Its data dir
    is where a real one lives (below /var/lib, traversable folders): under /tmp, or below a
    0700 folder such as pytest's, instances would not reach it anyway."""
    root = Path(tempfile.mkdtemp(prefix="squall-isolation-", dir="/var/lib"))
    root.chmod(0o755)
    node = SquallServer(root / "data", environ=environ)
    try:
        node.start()
        project = write_project(root / "project", PROJECT)
        node.cli("deploy", str(project), check=True)
        node.cli("deploy", str(project), "--stage", "staging", check=True)
        yield node
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def server() -> Iterator[SquallServer]:
    with started_server() as node:
        yield node


def processes_of(uid: int) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["uids"]):
        uids = process.info["uids"]
        if uids is not None and uids.real == uid:
            found.append(process)
    return found


# -- 1. the root data dir, from a stage -------------------------------------------------------

def test_a_stage_function_cannot_read_the_root_data_dir_or_its_store(server: SquallServer) -> None:
    data = str(server.data_dir.resolve())
    with bystander(server.url, "/steady"):
        seen = server.payload("snoop", {"data": data}, stage="staging")
    assert not seen["store"]["ok"] and seen["store"]["errno"] == errno.ENOENT, seen["store"]
    assert not seen["stage_store"]["ok"] and seen["stage_store"]["errno"] == errno.ENOENT
    assert not seen["root_code"]["ok"] and seen["root_code"]["errno"] == errno.ENOENT
    assert seen["listing"] == {"ok": True, "value": ["stages"]}  # only the way to its own code
    assert seen["own_code"]["ok"] and "app.py" in seen["own_code"]["value"]


def test_the_data_dir_and_the_files_the_node_writes_are_its_alone(server: SquallServer) -> None:
    """The data dir is 0700 and owned by the node; every file the node wrote (stores, keys,
    logs, ...) has no group or other bits. Code and deps trees, and the runtime folder of links
    to installed packages, are readable on purpose: instances reach them only through their
    binds."""
    server.payload("whoami", {})
    server.cli("bucket", "put", "uploads", "note.txt", "-", input="a bucket object", check=True)
    data = server.data_dir
    info = data.stat()
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()
    shared = ("code", "deps", "runtime")
    checked = []
    for folder, dirs, files in os.walk(data):
        relative = Path(folder).relative_to(data).parts
        if any(part in shared for part in relative):
            continue
        for name in files:
            path = Path(folder) / name
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o077 == 0, f"{path} is mode {mode:o}"
            checked.append(path.relative_to(data).parts[0])
    assert {"squall.db", "buckets", "stages"} <= set(checked), checked


# -- 2. a sibling's child process -------------------------------------------------------------

@pytest.fixture
def nobody_process() -> Iterator[int]:
    """A process of uid nobody that no function started: once the instances' uid."""
    process = subprocess.Popen(["sleep", "60"], user=65534, group=65534)
    yield process.pid
    process.kill()
    process.wait()


def held_child(holder_uid: int, seconds: int) -> int:
    """The host pid of the `sleep` the holder function started."""
    return int(wait_until(lambda: next((p.pid for p in processes_of(holder_uid)
                                        if command_of(p) == f"sleep {seconds}"), None)))


def test_a_sibling_cannot_read_trace_or_signal_another_functions_child(server: SquallServer,
                                                                       nobody_process: int) -> None:
    holder_uid = server.payload("hold", {"seconds": 0})["uid"]
    spy_uid = server.payload("whoami", {})["uid"]
    holding = threading.Thread(target=server.payload, args=("hold", {"seconds": 8}))
    with bystander(server.url, "/steady"):
        holding.start()
        child = held_child(holder_uid, 8)
        assert "the-holders-secret" in Path(f"/proc/{child}/environ").read_text(errors="replace")
        seen = server.payload("spy", {"pid": child, "others": [nobody_process, os.getpid()]})
        holding.join(30)
    for what in ("environ", "cwd", "root"):
        assert not seen[what]["ok"] and seen[what]["errno"] == errno.ENOENT, (what, seen[what])
    assert not seen["ptrace"]["ok"] and seen["ptrace"]["errno"] == errno.ESRCH, seen["ptrace"]
    assert not seen["signal"]["ok"] and seen["signal"]["errno"] == errno.ESRCH
    for other, result in seen["others"].items():
        assert not result["ok"] and result["errno"] == errno.ESRCH, (other, result)
    assert seen["visible"] == [1], "the instance sees only its own PID namespace"
    assert holder_uid != seen["uid"] and spy_uid != holder_uid
    assert holder_uid != 65534 and seen["uid"] != 65534


def test_each_function_and_stage_gets_its_own_uid(server: SquallServer) -> None:
    uids = {(stage, name): server.payload(name, {}, stage=stage)["uid"]
            for stage in ("", "staging") for name in ("whoami", "spawn")}
    gids = {server.payload("whoami", {}, stage=stage)["gid"] for stage in ("", "staging")}
    assert len(set(uids.values())) == 4, uids
    assert all(100000 <= uid <= 165535 for uid in uids.values()), uids
    assert gids == {uids[("", "whoami")], uids[("staging", "whoami")]}
    for uid in uids.values():
        with pytest.raises(KeyError):
            pwd.getpwuid(uid)  # a bare number: no account of the host has it


def test_a_functions_system_v_ipc_is_its_own(server: SquallServer) -> None:
    key = 0x5A11 + os.getpid() % 1000
    with bystander(server.url, "/steady"):
        made = server.payload("ipc_maker", {"key": key, "create": True})
        found = server.payload("ipc_finder", {"key": key})
        again = server.payload("ipc_maker", {"key": key})
    assert made["id"] >= 0, made
    assert again["id"] == made["id"], "the maker's own instance finds its segment"
    assert found == {"id": -1, "errno": errno.ENOENT}, "another function found the segment"


# -- 3. host Unix sockets ---------------------------------------------------------------------

@pytest.fixture
def run_socket() -> Iterator[str]:
    """A Unix socket any uid may connect to, where host services put theirs (/run)."""
    path = f"/run/squall-isolation-{uuid.uuid4().hex[:8]}.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o777)
    listener.listen(16)
    yield path
    listener.close()
    os.unlink(path)


@pytest.mark.parametrize("function", ["sockets", "offline"])
def test_host_unix_sockets_under_run_are_out_of_reach(server: SquallServer, run_socket: str, function: str) -> None:
    postgres = "/var/run/postgresql/.s.PGSQL.5432"
    assert Path(postgres).exists(), "the host's PostgreSQL socket (the attack's target) is missing"
    with bystander(server.url, "/steady"):
        seen = server.payload(function, {"paths": [run_socket, postgres]})
    for path in (run_socket, postgres):
        assert not seen[path]["ok"] and seen[path]["errno"] == errno.ENOENT, (path, seen[path])


@pytest.mark.parametrize("function", ["sockets", "offline"])
def test_no_function_reaches_the_hosts_abstract_sockets(server: SquallServer, function: str) -> None:
    """`network: none` has a network namespace of its own (the host's `@names` are not in it:
    ECONNREFUSED); the default mode shares the host's, and the Landlock scope refuses the
    connection (EPERM)."""
    name = f"\0squall-isolation-{uuid.uuid4().hex[:8]}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen(16)
        with bystander(server.url, "/steady"):
            seen = server.payload(function, {"paths": [name]})
    expected = errno.ECONNREFUSED if function == "offline" else errno.EPERM
    assert not seen[name]["ok"] and seen[name]["errno"] == expected, seen


def test_a_function_cannot_reach_another_functions_abstract_socket(server: SquallServer) -> None:
    name = f"\0squall-isolation-{uuid.uuid4().hex[:8]}"
    with bystander(server.url, "/steady"):
        assert server.payload("listener", {"name": name}) == {"listening": name}
        seen = server.payload("sockets", {"paths": [name]})
    assert not seen[name]["ok"] and seen[name]["errno"] == errno.EPERM, seen


@pytest.fixture
def dev_log() -> Iterator[str]:
    """/dev/log as syslog makes it: a Unix socket any uid may write to (made for the test
    when the host has none)."""
    path = "/dev/log"
    if os.path.lexists(path):
        yield path
        return
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    os.chmod(path, 0o666)
    try:
        yield path
    finally:
        listener.close()
        os.unlink(path)


def test_dev_log_is_out_of_reach(server: SquallServer, dev_log: str) -> None:
    with bystander(server.url, "/steady"):
        seen = server.payload("datagram", {"path": dev_log})
    assert not seen["ok"] and seen["errno"] == errno.ENOENT, seen  # not in the private /dev


@pytest.fixture
def elsewhere_socket() -> Iterator[str]:
    """A world-writable Unix socket outside /run and /dev, as a service might keep one in
    /var/lib: the sandbox does not hide it (documented in docs/sandbox.md)."""
    folder = Path(tempfile.mkdtemp(prefix="squall-test-", dir="/var/lib"))
    folder.chmod(0o755)
    path = str(folder / "service.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o777)
    listener.listen(16)
    try:
        yield path
    finally:
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_world_writable_unix_socket_outside_run_and_dev_stays_reachable(
        server: SquallServer, elsewhere_socket: str) -> None:
    """What is not isolated, pinned: Landlock (ABI <= 7) does not restrict connecting to a
    socket by its path, and only /run, /var/run and /dev/log are covered. `network: none`
    does not help either: a path socket belongs to no network namespace."""
    with bystander(server.url, "/steady"):
        online = server.payload("sockets", {"paths": [elsewhere_socket]})
        offline = server.payload("offline", {"paths": [elsewhere_socket]})
    assert online[elsewhere_socket] == {"ok": True, "value": "connected"}, online
    assert offline[elsewhere_socket] == {"ok": True, "value": "connected"}, offline


# -- 4. a setsid grandchild --------------------------------------------------------------------

def command_of(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:  # gone meanwhile
        return ""


def grandchildren(uid: int) -> list[psutil.Process]:
    """The looping grandchildren `spawn` left, of `uid`."""
    return [p for p in processes_of(uid) if "while True" in command_of(p)]


def wakeups(process: psutil.Process) -> int:
    return int(process.num_ctx_switches().voluntary)


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_setsid_grandchild_is_frozen_with_its_instance_and_dies_with_the_node() -> None:
    with started_server(SQUALL_UID_RANGE="170000-170999") as node:  # not the other server's uids
        with bystander(node.url, "/steady"):
            existing = {p.pid for p in psutil.process_iter()}
            uid = node.payload("spawn", {})["uid"]
            [grandchild] = wait_until(lambda: [p for p in grandchildren(uid) if p.pid not in existing])
            time.sleep(0.5)  # idle: the instance is frozen 50 ms after its call
            before = wakeups(grandchild)
            time.sleep(0.5)
            assert wakeups(grandchild) == before, "the grandchild kept running while its instance was frozen"
        node.stop(signal.SIGKILL)
        wait_until(lambda: gone(grandchild), timeout=15)


def test_a_setsid_grandchild_dies_when_its_instance_ends(server: SquallServer) -> None:
    with bystander(server.url, "/steady"):
        before = {p.pid for p in psutil.process_iter()}
        uid = server.payload("spawn", {})["uid"]
        [grandchild] = wait_until(lambda: [p for p in grandchildren(uid) if p.pid not in before])
        envelope = server.invoke("spawn", {"exit": True})  # the same (warm) instance ends itself
        assert not envelope["ok"] and "exit status 3" in envelope["payload"]["errorMessage"]
        wait_until(lambda: gone(grandchild), timeout=15)
