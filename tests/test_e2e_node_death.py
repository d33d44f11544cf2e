"""A node killed with SIGKILL leaves no instance behind, frozen ones included: an idle
instance is stopped (SIGSTOP) and could never notice its node is gone by itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import SquallServer, serving, wait_until

pytestmark = pytest.mark.e2e

PROJECT = {
    "squall.yaml": "name: orphans\nfunctions:\n  idle:\n    handler: app.handler\n    min_instances: 2\n",
    "app.py": "def handler(event, context):\n    return 'ok'\n",
}


def state(pid: int) -> str | None:
    """The process's state letter (R, S, T, Z...), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def instance_pids(node: SquallServer) -> list[int]:
    with node.api() as api:
        return [i["pid"] for i in api.get("/_squall/api/instances").json()["instances"]]


def test_instances_frozen_when_their_node_is_killed_die_with_it(tmp_path: Path) -> None:
    with serving(tmp_path, PROJECT) as node:
        pids = wait_until(lambda: (found := instance_pids(node)) and len(found) >= 2 and found)
        # frozen while idle: by the cgroup freezer (D), or stopped (T) where it is not writable
        wait_until(lambda: all(state(pid) in ("D", "T") for pid in pids), timeout=5)

        assert node.process is not None
        node.process.kill()
        node.process.wait()

        wait_until(lambda: all(state(pid) in (None, "Z") for pid in pids), timeout=10)
