"""`squall dev`: a node with one project deployed, redeployed on every file change."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from squall.bundle import IGNORED_DIRS
from squall.exceptions import SquallError
from squall.provenance import pack_deploy
from squall.server.run import TOKEN_FILE, serve
from squall.settings import TOKEN, URL

DEBOUNCE_MS = 100


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def describe(report: dict[str, Any], base_url: str) -> str:
    lines = []
    for function in report["functions"]:
        state = f"v{function['version']}" + (" (new)" if function["changed"] else "")
        lines.append(f"  {function['name']} {state}")
        for route in function["routes"]:
            method, _, path = route.partition(" ")
            lines.append(f"    {method:<7} {base_url}{path if path else ''}")
    for name in report["removed"]:
        lines.append(f"  {name} removed")
    lines.extend(f"  warning: {warning}" for warning in report.get("warnings", []))
    return "\n".join(lines)


def watched(change: Any, path: str) -> bool:
    return not any(part in IGNORED_DIRS for part in Path(path).parts) and not path.endswith((".pyc", "~"))


class DevLoop:
    """Deploys the project at start, then again whenever one of its files changes."""

    def __init__(self, project_dir: Path, base_url: str) -> None:
        self.project_dir = project_dir.resolve()
        self.base_url = base_url
        self.node: Any = None

    async def deploy_once(self) -> None:
        from squall.node.deploy import Deployer

        try:
            # As it is on disk, with where it came from: never refused for uncommitted changes.
            packed = await asyncio.to_thread(pack_deploy, self.project_dir, allow_dirty=True)
            bundle = packed.bundle
            report = await Deployer(self.node).deploy(bundle)
        except SquallError as exc:
            say(f"deploy failed: {exc}")
            return
        if report["changed"]:
            say(f"deployed {report['project']}:\n{describe(report, self.base_url)}")
        else:
            say("\n".join(["no changes", *(f"  warning: {w}" for w in report.get("warnings", []))]))

    async def watch(self) -> None:
        from watchfiles import awatch

        async for _changes in awatch(self.project_dir, watch_filter=watched, debounce=DEBOUNCE_MS, step=20):
            await self.deploy_once()

    async def start(self, node: Any) -> None:
        self.node = node
        await self.deploy_once()
        token_file = node.settings.data_dir / TOKEN_FILE
        token = f"${TOKEN.name}" if node.settings.server.token else f"$(cat {token_file})"
        say(f"watching {self.project_dir} for changes (Ctrl-C to stop)\n"
            f"other shells: export {URL.name}={self.base_url} {TOKEN.name}={token}")
        asyncio.ensure_future(self.watch())


def run_dev(project_dir: Path, data_dir: Path, host: str, port: int) -> None:
    """Run a node on `data_dir` with `project_dir` deployed and watched (blocking)."""
    loop = DevLoop(Path(project_dir), f"http://{host}:{port}")
    serve(Path(data_dir), host, port, None, on_startup=loop.start)
