"""The process-isolating peers a team would run instead of squall, started for
bench/http_throughput.py's one-core mode, each serving the same hello handler
(bench/peers/app.py) on GET /hello:

* awslambdaric: Lambda's own Python runtime interface client (PyPI), WORKERS processes behind
  the minimal Runtime API endpoint of bench/runtime_api_server.py;
* serverless-offline: the Serverless Framework's local Lambda + API Gateway (npm; an HTTP API
  route, Python runtime), installed into bench/peers/node_modules on first use.

`pinned` runs a block with this process's CPU affinity set: what it starts inherits it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
SLS = PEERS / "node_modules" / ".bin" / "sls"
NODE_ENV = {
    # Node 20.19+ loads ES modules with require(); serverless 3 then cannot tag its plugin
    # ("Cannot redefine property: _serverlessExternalPluginName"). Without it, it imports.
    "NODE_OPTIONS": "--no-experimental-require-module",
    "SLS_TELEMETRY_DISABLED": "1", "SLS_NOTIFICATIONS_MODE": "off", "SLS_DEPRECATION_DISABLE": "*",
}


class PeerMissing(RuntimeError):
    """A peer cannot run here (its package is not installed and cannot be)."""


@contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    """Run the block on `cpus` only; processes started in it keep that affinity."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def start_runtime_api(port: int, workers: int) -> subprocess.Popen[bytes]:
    """awslambdaric behind bench/runtime_api_server.py on `port`."""
    if importlib.util.find_spec("awslambdaric") is None:
        raise PeerMissing("awslambdaric is not installed (pip install awslambdaric)")
    return subprocess.Popen([sys.executable, str(HERE / "runtime_api_server.py"), str(port), str(workers), str(PEERS)],
                            start_new_session=True)


def start_serverless_offline(port: int, lambda_port: int) -> subprocess.Popen[bytes]:
    """serverless-offline serving bench/peers/serverless.yml on `port`."""
    install_serverless()
    return subprocess.Popen([str(SLS), "offline", "--httpPort", str(port), "--lambdaPort", str(lambda_port)],
                            cwd=PEERS, env={**os.environ, **NODE_ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def install_serverless() -> None:
    if SLS.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise PeerMissing("npm is not installed: serverless-offline cannot be")
    print("installing serverless and serverless-offline into bench/peers (npm, about a minute)...", flush=True)
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel", "error"], cwd=PEERS, check=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a peer and every process it started (its session)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass
