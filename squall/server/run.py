"""Starting a node: data dir, admin token, store, pool, then uvicorn on the ASGI app."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

import uvicorn

from squall.runtime.launcher import ZygoteLauncher, preload_profiles
from squall.runtime.pool import InstancePool, PoolLimits
from squall.secrets import load_secret_key
from squall.server.root import ServerApp, StartupHook, build_app
from squall.server.bodies import configure_route_budget
from squall.server.connections import BoundedServer, DirectLane, bounded_protocol, raise_open_file_limit, serve_limits
from squall.node.core import Node
from squall.node.specs import FunctionUids, NodeSettings, sdk_key
from squall.settings import TOKEN, Settings
from squall.store import open_store

TOKEN_FILE = "admin-token"


def admin_token(data_dir: Path, configured: str | None = None) -> str:
    """`configured` (the server's SQUALL_TOKEN) when set; otherwise the token in
    DATA/admin-token, made (mode 0600) if missing."""
    if configured:
        return configured
    path = data_dir / TOKEN_FILE
    if path.is_file():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


def private_data_dir(data_dir: Path) -> None:
    """The data dir mode 0700 (an existing one too), and everything the node writes from now
    on 0600 / 0700 (umask 077): store, token, keys, bucket objects and logs are the node's
    alone. Code and dependency folders are made readable on purpose (instances reach them
    through binds of their own, docs/sandbox.md)."""
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)


def make_node(data_dir: Path, store_url: str | None, settings: Settings, api_url: str = "") -> Node:
    """The root node on `data_dir`, configured by the server's `settings` (the pool and
    launcher here, the rest through NodeSettings: stage nodes copy the root's)."""
    private_data_dir(data_dir)
    store = open_store(store_url, data_dir)
    pool = InstancePool(ZygoteLauncher(profiles=preload_profiles(settings.zygote_preload)),
                        PoolLimits.from_settings(settings))
    return Node(NodeSettings(data_dir=data_dir.resolve(), api_url=api_url, sdk_key=sdk_key(store),
                             secret_key=load_secret_key(data_dir, settings.secret_key),
                             code_grace_seconds=settings.code_grace_seconds, region=settings.region,
                             uids=FunctionUids.from_settings(settings), server=settings), store, pool)


def server_config(app: Any, host: str, port: int, settings: Settings, direct: DirectLane | None = None,
                  **options: Any) -> uvicorn.Config:
    """How a node serves `app` with uvicorn: its connections bounded (squall/server/connections.py)
    after the open-file soft limit is raised to the hard limit, and its route bodies within
    SQUALL_ROUTE_BODY_BUDGET_MB (squall/server/bodies.py; docs/limits.md); `direct` (the app's
    `direct`, squall/server/direct.py) serves user routes without ASGI. `options` are more
    of uvicorn's settings (squall.testing serves in a thread and logs through the root logger)."""
    limits = serve_limits(settings, raise_open_file_limit())
    configure_route_budget(settings.route_body_budget_mb)
    return uvicorn.Config(app, host=host, port=port, loop="uvloop", http=bounded_protocol(limits, direct),
                          ws="none", lifespan="on", log_level="warning", access_log=False, server_header=False,
                          date_header=False, proxy_headers=False, **options)


def run_app(app: ServerApp, host: str, port: int, settings: Settings) -> None:
    """Serve `app` with uvicorn as `server_config` sets it up (blocking)."""
    BoundedServer(server_config(app, host, port, settings, app.direct)).run()


def serve(data_dir: Path, host: str, port: int, store_url: str | None,
          on_startup: StartupHook | None = None, settings: Settings | None = None) -> None:
    """Run a node until interrupted (blocking), configured by `settings` (when None, read
    from this process's environment now: the one time a server reads its settings)."""
    settings = Settings.from_environ() if settings is None else settings
    data_dir = Path(data_dir)
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    node = make_node(data_dir, store_url, settings, api_url=f"http://{local}:{port}")
    token = admin_token(data_dir, settings.token)
    kind = "postgresql" if store_url and store_url.startswith("postgres") else "sqlite"
    print(f"squall {host}:{port} serving (data {data_dir}, store {kind}); "
          f"admin token in {TOKEN.name if settings.token else data_dir / TOKEN_FILE}",
          file=sys.stderr, flush=True)
    run_app(build_app(node, token, on_startup), host, port, settings)
