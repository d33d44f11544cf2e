"""Functional tests of the instance pool with real processes, over both launchers."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Awaitable, Callable, TypeVar

import orjson
import pytest

from squall.exceptions import Throttled
from squall.runtime.instance import InstanceSpec
from squall.runtime.launcher import InstanceLauncher, SubprocessLauncher, ZygoteLauncher
from squall.runtime.pool import InstancePool, PoolLimits

pytestmark = pytest.mark.e2e

T = TypeVar("T")

HANDLERS = '''
import ctypes, gc, os, struct, sys, time

INITIALIZED = []
ARNS = []

def init(context):
    INITIALIZED.append(context.function_name)
    ARNS.append(context.invoked_function_arn)

def close(context):
    print("shutdown hook of", context.invoked_function_arn)

def broken_init(context):
    raise ConnectionError("database unreachable")

def forging_init(context):  # a `ready` frame without `init_ms`, on the instance's own channel
    channel = next(o for o in gc.get_objects() if type(o).__name__ == "Channel")
    head = b'{"t":"ready"}'
    os.write(1, channel.nonce + struct.pack(">II", len(head), 0) + head)
    time.sleep(5)

def handler(event, context):
    action = event.get("do")
    if action == "exit":
        os._exit(3)
    if action == "segfault":
        ctypes.string_at(0)
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "forge":  # a result frame without `ok`, on the instance's own channel
        channel = next(o for o in gc.get_objects() if type(o).__name__ == "Channel")
        head = b'{"t":"result","duration_ms":1,"max_rss_kb":1,"exiting":false}'
        os.write(1, channel.nonce + struct.pack(">II", len(head), 0) + head)
        time.sleep(5)
    print("serving", event.get("n"))
    if action == "init-check":
        return {"initialized": INITIALIZED, "arns": ARNS}
    return {"pid": int(os.readlink("/proc/self")), "n": event.get("n"), "env": os.environ.get("ONLY_MINE")}  # host pid: getpid() is 1 in its PID namespace
'''


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(HANDLERS)
    return tmp_path


def spec_for(code_dir: Path, timeout: float = 5.0) -> InstanceSpec:
    return InstanceSpec("f", 1, "app.handler", str(code_dir), 128, timeout,
                        {"PATH": "/usr/bin:/bin", "ONLY_MINE": "yes"}, (str(code_dir),))


LAUNCHERS: dict[str, Callable[[], InstanceLauncher]] = {"zygote": ZygoteLauncher, "subprocess": SubprocessLauncher}


@pytest.fixture(params=sorted(LAUNCHERS))
def make_pool(request: pytest.FixtureRequest) -> Callable[..., InstancePool]:
    def make(**limits: float) -> InstancePool:
        return InstancePool(LAUNCHERS[request.param](), PoolLimits(**limits))  # type: ignore[arg-type]
    return make


async def call(pool: InstancePool, spec: InstanceSpec, event: dict) -> tuple[bool, dict]:
    outcome = await pool.invoke(spec, "req", orjson.dumps(event), "arn:aws:lambda:x:0:function:f")
    return outcome.ok, orjson.loads(outcome.payload)


def test_warm_instance_is_reused_and_cold_one_is_new(make_pool: Callable[..., InstancePool],
                                                     code_dir: Path) -> None:
    async def scenario() -> None:
        pool, spec = make_pool(), spec_for(code_dir)
        try:
            ok, first = await call(pool, spec, {"n": 1})
            _, second = await call(pool, spec, {"n": 2})
            assert ok and first["pid"] == second["pid"] != os.getpid()
            assert first["env"] == "yes"
            pool.retire(spec.key)
            pool.reinstate(spec.key)
            _, third = await call(pool, spec, {"n": 3})
            assert third["pid"] != first["pid"]
        finally:
            await pool.close()
    run(scenario())


def test_exit_and_segfault_are_reported_and_replaced(make_pool: Callable[..., InstancePool],
                                                     code_dir: Path) -> None:
    async def scenario() -> None:
        pool, spec = make_pool(), spec_for(code_dir)
        try:
            ok, error = await call(pool, spec, {"do": "exit"})
            assert not ok and "Runtime exited with error: exit status 3" in error["errorMessage"]
            ok, error = await call(pool, spec, {"do": "segfault"})
            assert not ok and "signal: segmentation fault" in error["errorMessage"]
            ok, result = await call(pool, spec, {"n": 9})
            assert ok and result["n"] == 9
        finally:
            await pool.close()
    run(scenario())


def test_a_malformed_frame_kills_the_instance_and_names_the_field(
        make_pool: Callable[..., InstancePool], code_dir: Path) -> None:
    async def scenario() -> None:
        pool, spec = make_pool(), spec_for(code_dir)
        try:
            _, before = await call(pool, spec, {"n": 0})
            ok, error = await call(pool, spec, {"do": "forge"})
            assert not ok and error["errorType"] == "Runtime.ProtocolError"
            assert error["errorMessage"] == ("RequestId: req Error: Runtime sent an invalid result frame: "
                                             "field 'ok' is missing")
            ok, after = await call(pool, spec, {"n": 1})
            assert ok and after["pid"] != before["pid"]
        finally:
            await pool.close()
    run(scenario())


def test_timeout_kills_the_instance(make_pool: Callable[..., InstancePool], code_dir: Path) -> None:
    async def scenario() -> None:
        pool, spec = make_pool(), spec_for(code_dir, timeout=0.5)
        try:
            _, before = await call(pool, spec, {"n": 0})
            ok, error = await call(pool, spec, {"do": "sleep", "seconds": 10})
            assert not ok and error["errorMessage"] == "Task timed out after 0.50 seconds"
            _, after = await call(pool, spec, {"n": 1})
            assert after["pid"] != before["pid"]
            with pytest.raises(ProcessLookupError):
                os.kill(before["pid"], 0)
        finally:
            await pool.close()
    run(scenario())


def test_cap_throttles_at_once(make_pool: Callable[..., InstancePool], code_dir: Path) -> None:
    async def scenario() -> None:
        pool, spec = make_pool(per_function=1), spec_for(code_dir)
        try:
            busy = asyncio.ensure_future(call(pool, spec, {"do": "sleep", "seconds": 1}))
            await asyncio.sleep(0.3)
            with pytest.raises(Throttled):
                await call(pool, spec, {"n": 2})
            assert (await busy)[0]
        finally:
            await pool.close()
    run(scenario())


def test_idle_instances_are_reaped(make_pool: Callable[..., InstancePool], code_dir: Path) -> None:
    async def scenario() -> None:
        pool, spec = make_pool(idle_timeout=60), spec_for(code_dir)
        try:
            _, result = await call(pool, spec, {"n": 1})
            assert pool.reap_idle() == 0
            assert pool.reap_idle(now=asyncio.get_running_loop().time() + 3600) == 1
            assert pool.instances() == []
            await asyncio.sleep(0.2)
            with pytest.raises(ProcessLookupError):
                os.kill(result["pid"], 0)
        finally:
            await pool.close()
    run(scenario())


def test_a_dead_zygote_is_restarted(code_dir: Path) -> None:
    async def scenario() -> None:
        launcher = ZygoteLauncher()
        pool, spec = InstancePool(launcher), spec_for(code_dir)
        try:
            await call(pool, spec, {"n": 1})
            zygote = launcher.zygotes["base"].process
            assert zygote is not None
            os.kill(zygote.pid, signal.SIGKILL)
            await zygote.wait()
            await asyncio.sleep(0.1)
            pool.retire(spec.key)
            pool.reinstate(spec.key)
            ok, result = await call(pool, spec, {"n": 2})
            assert ok and result["n"] == 2
        finally:
            await pool.close()
    run(scenario())


def test_initializer_runs_once_and_its_failure_is_an_init_error(make_pool: Callable[..., InstancePool],
                                                                code_dir: Path) -> None:
    async def scenario() -> None:
        pool = make_pool()
        good = InstanceSpec(**{**spec_for(code_dir).__dict__, "initializer": "app.init"})
        bad = InstanceSpec(**{**spec_for(code_dir).__dict__, "function": "g", "initializer": "app.broken_init"})
        try:
            await call(pool, good, {})
            ok, result = await call(pool, good, {"do": "init-check"})
            assert ok and result["initialized"] == ["f"]
            ok, error = await call(pool, bad, {})
            assert not ok and error["errorType"] == "ConnectionError"
            assert error["errorMessage"] == "database unreachable"
            assert [i for i in pool.instances() if i.spec.function == "g"] == []
            forging = InstanceSpec(**{**spec_for(code_dir).__dict__, "function": "h",
                                      "initializer": "app.forging_init"})
            ok, error = await call(pool, forging, {})
            assert not ok and error["errorType"] == "Runtime.InitError"
            assert error["errorMessage"] == "Runtime sent an invalid ready frame: field 'init_ms' is missing"
            assert [i for i in pool.instances() if i.spec.function == "h"] == []
        finally:
            await pool.close()
    run(scenario())


def test_the_hooks_see_the_functions_arn(make_pool: Callable[..., InstancePool], code_dir: Path) -> None:
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:f"
    spec = InstanceSpec(**{**spec_for(code_dir).__dict__, "initializer": "app.init", "shutdown": "app.close",
                           "arn": arn})
    printed: list[str] = []

    async def scenario() -> None:
        pool = make_pool()
        pool.on_idle_output = lambda _spec, lines: printed.extend(line.message for line in lines)
        try:
            ok, result = await call(pool, spec, {"do": "init-check"})
            assert ok and result["arns"] == [arn]
            assert pool.recycle("f") == 1
        finally:
            await pool.close()
    run(scenario())
    assert printed == [f"shutdown hook of {arn}"]
