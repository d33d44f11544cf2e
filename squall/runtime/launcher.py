"""Starts instance processes. `InstanceLauncher` is the seam where a zygote (fork server) plugs in."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Protocol

from squall.runtime.instance import Instance, InstanceSpec

BOOT = "import sys; sys.path[:0] = sys.argv[1:]; from squall.runtime.bootstrap import main; main()"


class InstanceLauncher(Protocol):
    """Makes a new, not yet initialized, instance process for `spec`."""

    async def launch(self, spec: InstanceSpec) -> Instance: ...


def platform_sys_path() -> list[str]:
    """The import path an instance needs to find squall itself and the runtime's libraries."""
    import squall

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(squall.__file__)))
    found = [package_root] + [p for p in sys.path if p and os.path.isdir(p)]
    return list(dict.fromkeys(found))


class SubprocessLauncher:
    """Starts `python -I -S` with an explicit import path: no user site, no PYTHON* variables."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self.path = platform_sys_path()

    async def launch(self, spec: InstanceSpec) -> Instance:
        process = await asyncio.create_subprocess_exec(
            self.python, "-I", "-S", "-c", BOOT, *self.path,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, cwd=spec.code_dir, env=spec.environ,
            start_new_session=True)
        return Instance(process, spec)
