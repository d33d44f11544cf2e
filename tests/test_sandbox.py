"""Functional tests of the instance sandbox (squall/runtime/sandbox.py) with real instance
processes forked by the zygote: what a function can see, write and use up."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import stat
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

import orjson
import pytest

from squall.runtime import cgroups
from squall.runtime.instance import InstanceSpec
from squall.runtime.launcher import SubprocessLauncher, ZygoteLauncher, pid_namespace_prefix
from squall.runtime.pool import InstancePool
from tests.support import wait_until

T = TypeVar("T")

HANDLERS = '''
import errno, os, socket, sys, threading, time

def host_pid():
    """This instance's pid as the host sees it (os.getpid() is 1 in its own PID namespace):
    the name of its pids cgroup."""
    for line in open("/proc/self/cgroup"):
        _, controllers, path = line.strip().split(":", 2)
        name = path.rsplit("/", 1)[-1]
        if "pids" in controllers.split(",") and name.isdigit():
            return int(name)
    return os.getpid()

def attempt(fn):
    try:
        return {"ok": True, "value": fn()}
    except OSError as exc:
        return {"ok": False, "errno": exc.errno, "error": repr(exc)}

def fill_tmp():
    chunk = b"x" * (1 << 20)
    written = 0
    fd = os.open("/tmp/fill", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while written < (1 << 30):
            written += os.write(fd, chunk)
    except OSError as exc:
        return {"written_mb": written >> 20, "errno": exc.errno}
    finally:
        os.close(fd)
        os.unlink("/tmp/fill")
    return {"written_mb": written >> 20, "errno": None}

def fork_bomb():
    forks, error = 0, None
    while forks < 10000:
        try:
            pid = os.fork()
        except OSError as exc:
            error = exc.errno
            break
        if pid == 0:
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.01)
        forks += 1
    return {"forks": forks, "errno": error}

def thread_bomb():
    count, stop = 0, threading.Event()
    try:
        while count < 100000:
            threading.Thread(target=stop.wait, daemon=True).start()
            count += 1
    except RuntimeError as exc:
        stop.set()
        return {"threads": count, "error": str(exc)}
    return {"threads": count, "error": None}

def open_files():
    opened = []
    try:
        while len(opened) < 5000:
            opened.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as exc:
        return {"opened": len(opened), "errno": exc.errno}
    finally:
        for fd in opened:
            os.close(fd)
    return {"opened": len(opened), "errno": None}

def allocate():
    hoard = []
    while True:
        hoard.append(bytearray(16 << 20))

def handler(event, context):
    action = event.get("do")
    if action == "probe":
        return {
            "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "pid": host_pid(),
            "environ": dict(os.environ), "cwd": os.getcwd(),
            "store": attempt(lambda: open(event["data"] + "/squall.db").read()),
            "token": attempt(lambda: open(event["data"] + "/admin-token").read()),
            "data_listing": attempt(lambda: sorted(os.listdir(event["data"]))),
            "other_code": attempt(lambda: open(event["other"] + "/secret.py").read()),
            "deps": attempt(lambda: open(event["deps"] + "/dep.py").read()),
            "write_code": attempt(lambda: open("written.txt", "w").write("x")),
            "tmp_write": attempt(lambda: open("/tmp/mine", "w").write("x")),
            "connect": attempt(lambda: socket.create_connection(("127.0.0.1", event["port"]), 2).close()),
            "kill_zygote": attempt(lambda: os.kill(event["zygote"], 9)) if event.get("zygote") else None,
        }
    if action == "dev":
        master, follower = os.openpty()  # through /dev/ptmx and /dev/pts
        os.close(master)
        os.close(follower)
        with open("/dev/null", "w") as null, open("/dev/zero", "rb") as zero, open("/dev/urandom", "rb") as rand:
            null.write("x")
            return {"listing": sorted(os.listdir("/dev")), "zero": zero.read(4) == bytes(4),
                    "urandom": len(rand.read(8)), "shm": attempt(lambda: open("/dev/shm/x", "w").write("x")),
                    "kmsg": attempt(lambda: open("/dev/kmsg", "rb").close()),
                    "mknod": attempt(lambda: os.mkfifo("/dev/mine"))}
    if action == "fill_tmp":
        return fill_tmp()
    if action == "allocate":
        allocate()
    if action == "fork_bomb":
        return fork_bomb()
    if action == "thread_bomb":
        return thread_bomb()
    if action == "files":
        return open_files()
    return {"pid": host_pid()}
'''


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def run_in_pool(scenario: Callable[[InstancePool], Awaitable[None]]) -> None:
    """Run `scenario` with a fresh pool of zygote-forked instances, closed afterwards."""
    async def with_pool() -> None:
        pool = InstancePool(ZygoteLauncher())
        try:
            await scenario(pool)
        finally:
            await pool.close()
    asyncio.run(with_pool())


class Layout:
    """A node's data dir as deploys leave it: read-only code trees, deps, the store, the token."""

    def __init__(self, root: Path) -> None:
        self.data = root / "data"
        self.code = self.data / "code" / "aaaa"
        self.other = self.data / "code" / "bbbb"
        self.deps = self.data / "deps" / "cccc"
        for folder, name, text in ((self.code, "app.py", HANDLERS), (self.other, "secret.py", "KEY = 1\n"),
                                   (self.deps, "dep.py", "VALUE = 2\n")):
            folder.mkdir(parents=True)
            (folder / name).write_text(text)
            (folder / name).chmod(0o444)
            folder.chmod(0o555)
        (self.data / "squall.db").write_text("the store")
        token = self.data / "admin-token"
        token.write_text("admin-secret\n")
        token.chmod(0o600)

    def spec(self, version: int = 1, timeout: float = 10.0, **settings: Any) -> InstanceSpec:
        sandbox_settings = {
            "memory_mb": 256, "tmp_mb": 64, "network": "default",
            "code_dirs": [str(self.code), str(self.deps)], "hidden_dirs": [str(self.data)],
            "nofile": 1024, "nproc": 64, **settings,
        }
        environ = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
        return InstanceSpec("f", version, "app.handler", str(self.code), int(sandbox_settings["memory_mb"]),
                            timeout, environ, (str(self.code), str(self.deps)), sandbox=sandbox_settings)

    def probe(self, port: int = 9, zygote: int = 0) -> dict[str, Any]:
        return {"do": "probe", "data": str(self.data), "other": str(self.other), "deps": str(self.deps),
                "port": port, "zygote": zygote}


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


async def call(pool: InstancePool, spec: InstanceSpec, event: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    outcome = await pool.invoke(spec, "req", orjson.dumps(event), "arn:aws:lambda:x:0:function:f")
    return outcome.ok, orjson.loads(outcome.payload)


@pytest.mark.e2e
def test_data_dir_is_hidden_but_code_and_deps_stay_readable(layout: Layout) -> None:
    async def scenario() -> dict[str, Any]:
        pool = InstancePool(ZygoteLauncher())
        try:
            ok, seen = await call(pool, layout.spec(), layout.probe())
            assert ok, seen
            return seen
        finally:
            await pool.close()
    seen = run(scenario())
    assert not seen["store"]["ok"] and seen["store"]["errno"] == errno.ENOENT
    assert not seen["token"]["ok"] and seen["token"]["errno"] in (errno.ENOENT, errno.EACCES)
    assert not seen["other_code"]["ok"] and seen["other_code"]["errno"] == errno.ENOENT
    assert seen["data_listing"]["value"] == ["code", "deps"]  # only the way to its own code
    assert seen["deps"] == {"ok": True, "value": "VALUE = 2\n"}
    assert not seen["write_code"]["ok"] and seen["write_code"]["errno"] in (errno.EROFS, errno.EACCES)
    assert seen["tmp_write"] == {"ok": True, "value": 1}
    assert seen["cwd"] == str(layout.code)


@pytest.mark.e2e
def test_dev_holds_only_the_usual_devices(layout: Layout) -> None:
    """A private /dev: no host socket (/dev/log), no kernel log (/dev/kmsg), no other device;
    ptys, /dev/shm (the private /tmp) and the usual character devices work."""
    async def scenario(pool: InstancePool) -> None:
        ok, seen = await call(pool, layout.spec(), {"do": "dev"})
        assert ok, seen
        assert seen["listing"] == ["fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
                                   "stdout", "tty", "urandom", "zero"]
        assert seen["zero"] and seen["urandom"] == 8 and seen["shm"] == {"ok": True, "value": 1}
        assert not seen["kmsg"]["ok"] and seen["kmsg"]["errno"] == errno.ENOENT
        assert not seen["mknod"]["ok"] and seen["mknod"]["errno"] == errno.EROFS
    run_in_pool(scenario)


def zygote_pid(pool: InstancePool) -> int:
    launcher = pool.launcher
    assert isinstance(launcher, ZygoteLauncher)
    process = launcher.zygotes["base"].process
    assert process is not None
    return process.pid


@pytest.mark.e2e
def test_runs_as_nobody_without_groups_and_cannot_kill_the_zygote(layout: Layout) -> None:
    """Without a uid in its settings an instance runs as nobody; the zygote, outside its PID
    namespace, has no pid it could name."""
    async def scenario(pool: InstancePool) -> None:
        await pool.launcher.start()
        ok, seen = await call(pool, layout.spec(), layout.probe(zygote=zygote_pid(pool)))
        assert ok, seen
        assert (seen["uid"], seen["gid"], seen["groups"]) == (65534, 65534, [])
        assert seen["environ"] == {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}
        assert not seen["kill_zygote"]["ok"] and seen["kill_zygote"]["errno"] == errno.ESRCH
        ok, again = await call(pool, layout.spec(), {})
        assert ok and again["pid"] == seen["pid"]
    run_in_pool(scenario)


@pytest.mark.e2e
def test_network_none_cannot_reach_the_host(layout: Layout) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
            pool = InstancePool(ZygoteLauncher())
            try:
                _, offline = await call(pool, layout.spec(1, network="none"), layout.probe(port))
                _, online = await call(pool, layout.spec(2), layout.probe(port))
                return offline, online
            finally:
                await pool.close()
        offline, online = run(scenario())
    assert not offline["connect"]["ok"] and offline["connect"]["errno"] in (errno.ENETUNREACH, errno.ECONNREFUSED)
    assert online["connect"]["ok"]


@pytest.mark.e2e
def test_tmp_is_capped_with_enospc(layout: Layout) -> None:
    async def scenario(pool: InstancePool) -> None:
        ok, result = await call(pool, layout.spec(tmp_mb=16), {"do": "fill_tmp"})
        assert ok, result
        assert result["errno"] == errno.ENOSPC and 14 <= result["written_mb"] <= 16
    run_in_pool(scenario)


@pytest.mark.e2e
def test_memory_over_the_limit_kills_the_instance_and_it_is_replaced(layout: Layout) -> None:
    async def scenario(pool: InstancePool) -> None:
        spec = layout.spec(memory_mb=128)
        _, before = await call(pool, spec, {})
        ok, error = await call(pool, spec, {"do": "allocate"})
        assert not ok
        assert ("signal: killed" in error["errorMessage"] or error["errorType"] == "MemoryError"), error
        ok, after = await call(pool, spec, {})
        assert ok and after["pid"] != before["pid"]
    run_in_pool(scenario)


@pytest.mark.e2e
def test_fork_bomb_is_capped_and_cleaned_up(layout: Layout) -> None:
    async def scenario(pool: InstancePool) -> None:
        spec = layout.spec(nproc=32)
        ok, result = await call(pool, spec, {"do": "fork_bomb"})
        assert ok, result
        assert result["errno"] == errno.EAGAIN and result["forks"] < 32
        pid = (await call(pool, spec, {}))[1]["pid"]
        groups = [os.path.join(root, str(pid)) for root in cgroups.cgroup_roots().values()]
        assert groups and all(os.path.isdir(group) for group in groups)
        pool.retire(spec.key)
        await asyncio.to_thread(wait_until, lambda: not any(os.path.exists(g) for g in groups), 10)
    run_in_pool(scenario)


@pytest.mark.e2e
def test_thread_bomb_is_capped_and_the_instance_keeps_serving(layout: Layout) -> None:
    async def scenario(pool: InstancePool) -> None:
        spec = layout.spec(nproc=64)
        ok, result = await call(pool, spec, {"do": "thread_bomb"})
        assert ok and result["threads"] < 64 and "can't start new thread" in result["error"]
        assert (await call(pool, spec, {}))[0]
    run_in_pool(scenario)


@pytest.mark.e2e
def test_open_files_are_capped_with_emfile(layout: Layout) -> None:
    async def scenario(pool: InstancePool) -> None:
        ok, result = await call(pool, layout.spec(nofile=256), {"do": "files"})
        assert ok and result["errno"] == errno.EMFILE and result["opened"] < 256
    run_in_pool(scenario)


@pytest.mark.e2e
def test_a_step_that_fails_is_an_init_error_unless_not_required(layout: Layout) -> None:
    async def scenario(pool: InstancePool) -> None:
        ok, error = await call(pool, layout.spec(1, network="bogus"), {})
        assert not ok and error["errorType"] == "Runtime.SandboxError"
        assert "sandbox step 'network' failed" in error["errorMessage"]
        outcome = await pool.invoke(layout.spec(2, network="bogus", required=False), "r", b"{}", "arn")
        assert outcome.ok
        assert any("sandbox step 'network' skipped" in line.message for line in outcome.logs)
    run_in_pool(scenario)


@pytest.mark.e2e
def test_unreadable_code_dir_is_reported(layout: Layout) -> None:
    private = layout.data / "code" / "private"
    private.mkdir(mode=0o700)
    (private / "app.py").write_text("def handler(e, c): return 1\n")
    spec = layout.spec(code_dirs=[str(private)])
    spec = InstanceSpec("f", 1, "app.handler", str(private), 256, 5, {}, (str(private),), sandbox=spec.sandbox)

    async def scenario(pool: InstancePool) -> None:
        ok, error = await call(pool, spec, {})
        assert not ok and error["errorType"] == "Runtime.SandboxError"
        assert "not readable by uid 65534" in error["errorMessage"]
    run_in_pool(scenario)


@pytest.mark.e2e
def test_subprocess_launcher_applies_the_same_sandbox(layout: Layout) -> None:
    async def scenario() -> None:
        pool = InstancePool(SubprocessLauncher())
        try:
            ok, seen = await call(pool, layout.spec(), layout.probe())
            assert ok and seen["uid"] == 65534 and not seen["store"]["ok"]
        finally:
            await pool.close()
    run(scenario())


@pytest.mark.e2e
def test_code_tree_permissions_are_untouched(layout: Layout) -> None:
    """The sandbox only changes the instance's view: the host's data dir is as it was."""
    async def scenario(pool: InstancePool) -> None:
        assert (await call(pool, layout.spec(), layout.probe()))[0]
    run_in_pool(scenario)
    assert (layout.data / "squall.db").read_text() == "the store"
    assert stat.S_IMODE(layout.code.stat().st_mode) == 0o555
    assert not (layout.code / "written.txt").exists()


def memory_group_of(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as handle:
        line = next(line for line in handle.read().splitlines() if ":memory:" in line)
    return "/sys/fs/cgroup/memory" + line.split(":", 2)[2]


@pytest.mark.e2e
def test_every_instance_has_its_memory_limit_spare_or_not(layout: Layout) -> None:
    """The first cold start forks on request, later ones take the zygote's spare child,
    which joined its groups before it knew its limits: both must end up limited."""
    async def scenario(pool: InstancePool) -> None:
        spec = layout.spec(memory_mb=128)
        for _ in range(3):
            ok, result = await call(pool, spec, {})
            assert ok, result
            group = memory_group_of(result["pid"])
            assert os.path.basename(group) == str(result["pid"])
            with open(os.path.join(group, "memory.limit_in_bytes")) as handle:
                assert int(handle.read()) == 128 * 1024 * 1024
            assert [d for d in os.listdir(group) if os.path.isdir(os.path.join(group, d))] == []
            pool.recycle("f")
            await asyncio.sleep(0.1)
    run_in_pool(scenario)


@pytest.mark.e2e
def test_a_platform_dir_under_tmp_stays_importable_and_its_data_dir_hidden(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys
    import tempfile
    import textwrap

    checkout = Path(tempfile.mkdtemp(prefix="squall-checkout-", dir="/tmp"))
    try:
        (checkout / "late_module.py").write_text("VALUE = 42\n")
        (checkout / "data" / "code").mkdir(parents=True)
        (checkout / "data" / "secret").write_text("token")
        (checkout / "data" / "code" / "handler_module.py").write_text("NAME = 'handler'\n")
        for path in (checkout, checkout / "data", checkout / "data" / "code"):
            path.chmod(0o755)
        script = textwrap.dedent(f"""
            import json, os, sys
            sys.path.insert(0, {str(checkout)!r})
            from squall.runtime import sandbox
            code = {str(checkout / "data" / "code")!r}  # the code dir lives in the hidden data dir
            sandbox.enter({{"memory_mb": 128, "tmp_mb": 16, "code_dirs": [code],
                            "hidden_dirs": [{str(checkout / "data")!r}]}})
            sys.path.insert(0, code)
            import late_module  # not imported before the sandbox: needs the checkout readable
            import handler_module
            print(json.dumps({{"value": late_module.VALUE, "handler": handler_module.NAME,
                              "data": sorted(os.listdir({str(checkout / "data")!r}))}}))
        """)
        result = subprocess.run([*pid_namespace_prefix(), sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                                cwd="/", env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    finally:
        subprocess.run(["rm", "-rf", str(checkout)], check=True)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"value": 42, "handler": "handler", "data": ["code"]}


def test_function_uids_are_one_per_stage_and_function_and_never_shared() -> None:
    from squall.exceptions import BadInput, SquallError
    from squall.node.specs import FunctionUids
    from squall.settings import Settings

    uids = FunctionUids(200000, 200002)
    first = uids.uid_of("default", "a")
    assert [uids.uid_of("default", "a"), uids.uid_of("staging", "a"), uids.uid_of("default", "b")] \
        == [first, first + 1, first + 2]
    with pytest.raises(SquallError, match="no uid left in SQUALL_UID_RANGE 200000-200002"):
        uids.uid_of("default", "c")
    with pytest.raises(SquallError, match="no uid left"):
        FunctionUids(65534, 65534).uid_of("default", "a")  # names `nobody`: skipped
    def from_environ(environ: dict[str, str]) -> FunctionUids:
        return FunctionUids.from_settings(Settings.from_environ(environ))

    assert from_environ({}).first == 100000 and from_environ({}).last == 165535
    assert from_environ({"SQUALL_UID_RANGE": "300000-300009"}).uid_of("s", "f") == 300000
    for bad in ("abc", "5-3", "0-10", "100000"):
        with pytest.raises(BadInput, match="SQUALL_UID_RANGE"):
            from_environ({"SQUALL_UID_RANGE": bad})


def freezer_fds(pid: int) -> list[int]:
    """This process's descriptors open on instance `pid`'s freezer.state."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.endswith(f"/squall/{pid}/freezer.state"):
            found.append(int(name))
    return found


@pytest.mark.e2e
def test_an_instance_holds_its_freezer_state_open_from_init_to_end(layout: Layout) -> None:
    """A warm call's thaw is one write to a descriptor opened when the instance started, not
    an open, a write and a close; the descriptor is closed when the instance ends."""
    async def scenario(pool: InstancePool) -> None:
        spec = layout.spec()
        ok, first = await call(pool, spec, {})
        assert ok, first
        pid = [i.pid for i in pool.instances()][0]
        group = os.path.join(cgroups.cgroup_roots()["freezer"], str(pid))
        assert len(freezer_fds(pid)) == 1
        state = Path(group) / "freezer.state"
        await asyncio.to_thread(wait_until, lambda: state.read_text().strip() == "FROZEN", 5)
        ok, again = await call(pool, spec, {})  # thawed through the open descriptor
        assert ok and again["pid"] == first["pid"]
        assert len(freezer_fds(pid)) == 1
        pool.recycle("f")
        await asyncio.to_thread(wait_until, lambda: not freezer_fds(pid), 5)
    run_in_pool(scenario)
