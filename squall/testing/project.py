"""A squall project deployed on a real node of its own, and what a test does with it.

    with start_project("examples/hello") as hello:
        assert hello.get("/hello", params={"name": "you"}).json() == {"message": "hello, you"}
        result = hello.invoke("hello", {"queryStringParameters": {"name": "cli"}})
        assert "saying hello to cli" in hello.log_text("hello", request_id=result.request_id)

`start_project` starts a node (squall/testing/threaded_node.py: the node `squall server`
makes, on a SQLite store in a temporary folder, served on a free loopback port from a thread
of this process) and deploys the project's folder to it as `squall dev` does (`pack_deploy`
of the folder as it is on disk, through the platform API's deploy). `stop()` (or leaving the
`with` block) stops the node and its instances and deletes the folder.

The methods go through the node's HTTP doors: the routes with httpx, everything else with
squall's own client of the platform API (squall/client.py). Asynchronous work (async invokes,
topics, queues, buckets) runs in the node's background as on any server; `settle()` waits
until the node's store holds none left to do. The schedules follow `clock`
(squall/testing/clock.py).
"""

from __future__ import annotations

import os
import secrets as token_source
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Mapping

import httpx
import orjson

from squall.testing.clock import ScheduleClock
from squall.testing.results import AsyncInvocation, Invocation, LogLine
from squall.testing.threaded_node import ThreadedNode

if TYPE_CHECKING:
    from squall.client import SquallClient
    from squall.node.core import Node
    from squall.sdk.tables import Table

MANIFEST = "squall.yaml"
SETTLE_TIMEOUT = 30.0
ROOT_STAGE = "default"
"""The stage the client calls, whatever SQUALL_STAGE says (the CLI's setting, not the test's)."""
POLL = 0.02


class Project:
    """One project on a node of its own: start it with `start()` (or `start_project`), stop it
    with `stop()` or a `with` block. `env` is set on every function over what squall.yaml
    says (a copy of the folder is deployed, its squall.yaml changed); `secrets` are set on
    the node before the deploy; the clock starts at `now` (default: the real time)."""

    def __init__(self, path: str | Path, *, env: Mapping[str, str] | None = None,
                 secrets: Mapping[str, str] | None = None, now: datetime | None = None) -> None:
        self.path = Path(path).resolve()
        if not (self.path / MANIFEST).is_file():
            raise FileNotFoundError(f"{self.path} has no {MANIFEST}: give the folder of a squall project")
        self.env = dict(env or {})
        self.secrets = dict(secrets or {})
        self._start_time = now
        self._root: Path | None = None
        self._node: ThreadedNode | None = None
        self._api: SquallClient | None = None
        self._http: httpx.Client | None = None
        self._clock: ScheduleClock | None = None
        self.deployed: dict[str, Any] = {}
        """The platform's answer to the last deploy (functions, versions, routes, warnings)."""

    # -- life ------------------------------------------------------------------------

    def start(self) -> Project:
        """Start the node, set the secrets and deploy the project; stopped again on failure."""
        from squall.client import SquallClient

        if self._node is not None:
            raise RuntimeError(f"the project {self.path} is already started")
        try:
            self._root = Path(tempfile.mkdtemp(prefix="squall-test-"))
            token = token_source.token_urlsafe(32)
            self._node = ThreadedNode(self._root / "data", token, on_startup=self._take_schedules).start()
            self._api = SquallClient(self._node.url, token, timeout=120, stage=ROOT_STAGE)
            self._http = httpx.Client(base_url=self._node.url, timeout=120)
            self._clock = ScheduleClock(self._node, self._start_time or datetime.now(UTC))
            for name, value in self.secrets.items():
                self._api.set_secret(name, value.encode())
            self.deploy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the node (its instances, its zygote) and delete its folder. Idempotent."""
        try:
            for client in (self._http, self._api):
                if client is not None:
                    client.close()
            if self._node is not None:
                self._node.stop()
        finally:
            self._http = self._api = self._node = None
            if self._root is not None:
                remove_tree(self._root)
                self._root = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def deploy(self) -> dict[str, Any]:
        """Deploy the project's folder as it is now (say, after the test changed a file): the
        platform's answer, as `squall deploy --json` prints it."""
        from squall.provenance import pack_deploy

        packed = pack_deploy(self._deployable(), allow_dirty=True)
        self.deployed = self.api.deploy(packed.bundle)
        self.clock.sync()
        return self.deployed

    # -- what the node is ----------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where the node answers: `url + "/hello"` is the route `/hello`."""
        return self._running().url

    @property
    def token(self) -> str:
        """The node's admin token (for the platform API, the AWS doors, the CLI's SQUALL_TOKEN)."""
        return self._running().token

    @property
    def data_dir(self) -> Path:
        return self._running().data_dir

    @property
    def node(self) -> Node:
        """The node itself (squall.node.core.Node), for what the methods here do not cover."""
        return self._running().node

    @property
    def api(self) -> SquallClient:
        """squall's platform API client (squall.client.SquallClient) logged in to the node."""
        if self._api is None:
            raise RuntimeError("the project is not running (start it first)")
        return self._api

    @property
    def http(self) -> httpx.Client:
        """An httpx client whose base URL is the node: the users' routes."""
        if self._http is None:
            raise RuntimeError("the project is not running (start it first)")
        return self._http

    @property
    def clock(self) -> ScheduleClock:
        """The schedules' clock: `clock.advance("1d")` fires what would have fired in a day."""
        if self._clock is None:
            raise RuntimeError("the project is not running (start it first)")
        return self._clock

    # -- routes --------------------------------------------------------------------------

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """Send `method path` to the node's routes (httpx's options: params, json, content,
        headers, ...); the response as the function's route answered it."""
        return self.http.request(method, path, **options)

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> httpx.Response:
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Any) -> httpx.Response:
        return self.request("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> httpx.Response:
        return self.request("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> httpx.Response:
        return self.request("DELETE", path, **options)

    # -- invoking ------------------------------------------------------------------------

    def invoke(self, function: str, event: Any = None) -> Invocation:
        """Invoke `function` (`NAME`, `NAME:ALIAS` or `NAME:7`) synchronously with `event`
        (anything JSON; `{}` when None) as `squall invoke` does; its result."""
        return Invocation.from_api(self.api.invoke(function, _json(event)))

    def invoke_async(self, function: str, event: Any = None, *, wait: bool = True,
                     timeout: float = SETTLE_TIMEOUT) -> AsyncInvocation:
        """Invoke `function` asynchronously (stored, run in the background with its retries);
        with `wait`, once it has succeeded or become a dead letter (TimeoutError after
        `timeout` seconds), else as soon as it is stored."""
        request_id = str(self.api.invoke_async(function, _json(event), idempotency_key=uuid.uuid4().hex)["requestId"])
        run = AsyncInvocation.from_api(self.api.get_event(request_id))
        deadline = time.monotonic() + timeout
        while wait and not run.done:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the asynchronous invocation {request_id} of {function} is still "
                                   f"{run.status} after {timeout:g} s")
            time.sleep(POLL)
            run = AsyncInvocation.from_api(self.api.get_event(request_id))
        return run

    def trigger(self, function: str, kind: str, **fields: Any) -> Invocation:
        """Invoke `function` now with the event its `kind` trigger (`schedule`, `topic`, `queue`,
        `bucket`) would deliver, as `squall trigger` does (`name=`, `message=`, `key=`, ...)."""
        return Invocation.from_api(self.api.trigger(function, {"kind": kind, **fields}))

    # -- events ----------------------------------------------------------------------

    def publish(self, topic: str, message: str, *, subject: str | None = None,
                attributes: dict[str, Any] | None = None) -> str:
        """Publish to `topic`; the message id once each subscriber's event is stored."""
        return str(self.api.publish(topic, message, subject=subject, attributes=attributes)["messageId"])

    def send(self, queue: str, body: str, *, attributes: dict[str, Any] | None = None,
             group_id: str | None = None, deduplication_id: str | None = None,
             delay: float | None = None) -> str:
        """Send a message to `queue`; its id once it is stored."""
        return str(self.api.send_message(queue, body, attributes=attributes, group_id=group_id,
                                         deduplication_id=deduplication_id, delay=delay)["messageId"])

    def put_object(self, bucket: str, key: str, content: bytes | str,
                   content_type: str = "application/octet-stream") -> dict[str, Any]:
        """Store an object (its bucket's triggers fire); `{"size", "etag", ...}`."""
        data = content.encode() if isinstance(content, str) else content
        return self.api.put_object(bucket, key, data, content_type)

    def get_object(self, bucket: str, key: str) -> bytes:
        return self.api.get_object(bucket, key)

    def delete_object(self, bucket: str, key: str) -> None:
        self.api.delete_object(bucket, key)

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Wait until the asynchronous work is done: no event queued or running (async
        invokes, topic and bucket deliveries, retries waiting) and no message left in a queue
        a function consumes. TimeoutError after `timeout` seconds, saying what is left."""
        deadline = time.monotonic() + timeout
        while pending := self._running().call(self._pending()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"asynchronous work still pending after {timeout:g} s: {pending}")
            time.sleep(POLL)

    async def _pending(self) -> str:
        import asyncio

        node = self.node
        counts = await asyncio.to_thread(node.store.count_events)
        events = sum(n for status, n in counts.items() if status.value in ("queued", "running"))
        now = time.time()
        queues = {}
        for queue in sorted({queue for _, queue in node.events.queues.consumers}):
            left = await asyncio.to_thread(node.store.queue_counts, queue, now=now)
            if sum(left.values()):
                queues[queue] = sum(left.values())
        parts = [f"{events} event(s) queued or running"] if events else []
        parts += [f"{n} message(s) in queue {queue}" for queue, n in queues.items()]
        return ", ".join(parts)

    def dead_letters(self, function: str) -> list[AsyncInvocation]:
        """The dead letters of `function`, oldest first."""
        return [AsyncInvocation.from_api(event) for event in self.api.dead_letters(function)]

    # -- logs and state --------------------------------------------------------------------

    def logs(self, function: str, *, request_id: str | None = None) -> list[LogLine]:
        """The stored log lines of `function` (of one invocation with `request_id`), oldest
        first, once what the node has written so far is stored."""
        self.node.logs.flush()
        return [LogLine.from_api(line) for line in self.api.iter_logs(function, request_id=request_id)]

    def log_text(self, function: str, *, request_id: str | None = None) -> str:
        """The messages of `logs(...)`, one line each."""
        return "\n".join(line.message.rstrip("\n") for line in self.logs(function, request_id=request_id))

    def table(self, name: str) -> Table:
        """The table `name` with plain values (squall.sdk.tables.Table), as the admin."""
        from squall.sdk.tables import table

        return table(name, call=self.api.table_call)

    def set_secret(self, name: str, value: str) -> None:
        """Set the secret `name`; the functions that list it get the new value from their next instance."""
        self.api.set_secret(name, value.encode())

    # -- plumbing ----------------------------------------------------------------------

    def _running(self) -> ThreadedNode:
        if self._node is None:
            raise RuntimeError("the project is not running (start it first)")
        return self._node

    async def _take_schedules(self, node: Node) -> None:
        """The clock fires the schedules: the scheduler's own timer does not run."""
        await node.events.scheduler.stop()

    def _deployable(self) -> Path:
        """The folder to deploy: the project's own, or (with `env`) a copy with squall.yaml's
        functions given `env` over their own."""
        if not self.env:
            return self.path
        import yaml

        from squall.bundle import project_files

        assert self._root is not None
        copy = self._root / "project" / self.path.name
        remove_tree(copy)
        for relative in project_files(self.path):
            target = copy / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.path / relative, target)
        manifest = yaml.safe_load((self.path / MANIFEST).read_text(encoding="utf-8"))
        for function in (manifest.get("functions") or {}).values():
            if isinstance(function, dict):
                function["env"] = {**(function.get("env") or {}), **self.env}
        (copy / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
        return copy


def start_project(path: str | Path = ".", *, env: Mapping[str, str] | None = None,
                  secrets: Mapping[str, str] | None = None, now: datetime | None = None) -> Project:
    """The project in `path` deployed on a node of its own, started; use it in a `with` block
    (or call `stop()`) so that the node stops. See `Project` for the options."""
    return Project(path, env=env, secrets=secrets, now=now).start()


def _json(event: Any) -> bytes:
    return orjson.dumps({} if event is None else event)


def remove_tree(path: Path) -> None:
    """Delete `path` and everything in it, read-only folders too (deployed code is read-only)."""
    if not path.exists():
        return
    path.chmod(0o700)
    for folder, names, _ in os.walk(path):
        for name in names:
            if not os.path.islink(os.path.join(folder, name)):
                os.chmod(os.path.join(folder, name), 0o700)
    shutil.rmtree(path)
