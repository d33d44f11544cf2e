"""The zygote launcher's profiles: which zygote a function forks from, and what it preloads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from squall.runtime.instance import InstanceSpec
from squall.runtime.launcher import AWS_PROFILE, BASE_PROFILE, ZygoteLauncher, choose_profile
from squall.runtime.pool import InstancePool


def test_code_that_imports_boto3_gets_the_aws_zygote(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import json\n\ndef handler(e, c):\n    return 1\n")
    assert choose_profile([str(tmp_path)]) == BASE_PROFILE
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "store.py").write_text("x = 1\nfrom boto3.dynamodb.conditions import Key\n")
    assert choose_profile([str(tmp_path)]) == AWS_PROFILE


def test_a_bundled_boto3_wins_over_the_preloaded_one(tmp_path: Path) -> None:
    code, deps = tmp_path / "code", tmp_path / "deps"
    code.mkdir()
    (code / "app.py").write_text("import boto3\n")
    (deps / "boto3").mkdir(parents=True)
    assert choose_profile([str(code), str(deps)]) == BASE_PROFILE


@pytest.mark.e2e
def test_each_profile_preloads_what_it_says(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "import sys\n\ndef handler(event, context):\n    return 'boto3' in sys.modules\n")

    async def loaded(profile: str) -> bool:
        pool = InstancePool(ZygoteLauncher())
        spec = InstanceSpec("f", 1, "app.handler", str(tmp_path), 128, 10, {"PATH": "/usr/bin"},
                            (str(tmp_path),), zygote=profile)
        try:
            outcome = await pool.invoke(spec, "r", b"{}", "arn")
            assert outcome.ok, outcome.payload
            return bool(orjson.loads(outcome.payload))
        finally:
            await pool.close()

    assert asyncio.run(loaded(AWS_PROFILE)) is True
    assert asyncio.run(loaded(BASE_PROFILE)) is False


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(p) for p in handle.read().split()]


@pytest.mark.e2e
def test_the_next_cold_start_takes_the_spare_child(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import os\n\ndef handler(event, context):\n    return int(os.readlink('/proc/self'))\n")  # host pid

    async def scenario() -> None:
        launcher = ZygoteLauncher(profiles={BASE_PROFILE: ()})
        pool = InstancePool(launcher)
        spec = InstanceSpec("f", 1, "app.handler", str(tmp_path), 128, 10, {"PATH": "/usr/bin"}, (str(tmp_path),))
        try:
            await launcher.start()
            zygote = launcher.zygotes[BASE_PROFILE].process
            assert zygote is not None
            for _ in range(200):
                if children_of(zygote.pid):
                    break
                await asyncio.sleep(0.01)
            [spare] = children_of(zygote.pid)
            outcome = await pool.invoke(spec, "r", b"{}", "arn")
            assert outcome.ok and orjson.loads(outcome.payload) == spare
            for _ in range(200):
                if len(children_of(zygote.pid)) == 2:
                    break
                await asyncio.sleep(0.01)
            assert len(children_of(zygote.pid)) == 2, "a new spare is forked once the zygote is idle"
        finally:
            await pool.close()
    asyncio.run(scenario())
