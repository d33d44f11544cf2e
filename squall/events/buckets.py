"""Buckets: objects whose content is a file under the node's data dir
(`DATA/buckets/<bucket>/<id>`) and whose metadata is in the store, and the S3 event
notifications their changes trigger.

A put streams the body to a file (never whole in memory), then commits the metadata
together with one event per matching `- bucket:` trigger (ObjectCreated:Put), so the
notification is stored before the 2xx; a delete does the same with ObjectRemoved:Delete.
Files an overwrite or a delete leave behind are removed after the commit. The content
lives on one node's disk: several nodes need a shared data dir for buckets
(docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import orjson

from squall.events.host import EventHost, EventSink
from squall.events.shapes import s3_event, s3_record
from squall.exceptions import BadInput, NotFound, PayloadTooLarge
from squall.store.events import NewEvent
from squall.store.objects import ObjectInfo

MAX_OBJECT_BYTES = 5 * 1024**3
"""S3's limit for a single PUT: 5 GiB."""
MAX_KEY_BYTES = 1024
LIST_LIMIT = 1000


def check_key(key: str) -> None:
    size = len(key.encode())
    if not key or size > MAX_KEY_BYTES:
        raise BadInput(f"an object key must be 1 to {MAX_KEY_BYTES} bytes of UTF-8, got {size} bytes")
    if "\x00" in key:
        raise BadInput("an object key may not contain a NUL character")


def event_matches(trigger: dict[str, Any], event_name: str, key: str) -> bool:
    """Whether a `- bucket:` trigger wants `event_name` (e.g. ObjectCreated:Put) for `key`."""
    kind = event_name.split(":", 1)[0]
    wanted = trigger.get("events") or ["ObjectCreated:*"]
    if event_name not in wanted and f"{kind}:*" not in wanted:
        return False
    return key.startswith(trigger.get("prefix") or "") and key.endswith(trigger.get("suffix") or "")


class Buckets:
    def __init__(self, node: EventHost, sink: EventSink) -> None:
        self.node = node
        self.sink = sink
        self.store = node.store
        self.root = Path(node.settings.data_dir) / "buckets"

    def check_bucket(self, name: str) -> None:
        if name not in self.node.resources.get("bucket", {}):
            raise NotFound(f"The specified bucket does not exist: {name}")

    def notifications(self, bucket: str, key: str, event_name: str, info: ObjectInfo | None) -> list[NewEvent]:
        """One event per function trigger on `bucket` that wants this change."""
        now = datetime.now(timezone.utc)
        settings = self.node.settings
        events = []
        for function in self.node.functions.values():
            for trigger in function.version.config.get("triggers", []):
                if trigger.get("bucket") != bucket or not event_matches(trigger, event_name, key):
                    continue
                event = self.sink.new_event(function, b"{}", source=f"bucket:{bucket}", qualifier=trigger.get("alias"))
                record = s3_record(event_name, bucket, key, info.size if info else None, info.etag if info else None,
                                   f"{time.time_ns():016X}", now, event.id, region=settings.region)
                events.append(NewEvent(event.id, event.function, orjson.dumps(s3_event([record])), event.source,
                                       event.max_attempts, event.expires_at, event.run_at))
        return events

    async def put(self, bucket: str, key: str, body: AsyncIterator[bytes], content_type: str) -> ObjectInfo:
        self.check_bucket(bucket)
        check_key(key)
        relative = f"buckets/{bucket}/{uuid.uuid4().hex}"
        target = Path(self.node.settings.data_dir) / relative
        size, etag = await self._write_file(target, body)
        info = ObjectInfo(bucket, key, size, etag, content_type or "application/octet-stream", time.time(), relative)
        try:
            old = await asyncio.to_thread(self.store.put_object, info,
                                          self.notifications(bucket, key, "ObjectCreated:Put", info), now=time.time())
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        self._remove(old)
        self.sink.wake_events()
        return info

    async def _write_file(self, target: Path, body: AsyncIterator[bytes]) -> tuple[int, str]:
        """Stream `body` into `target` (written beside it, fsynced, then renamed)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        digest, size = hashlib.md5(usedforsecurity=False), 0
        try:
            with open(partial, "wb") as handle:
                async for chunk in body:
                    size += len(chunk)
                    if size > MAX_OBJECT_BYTES:
                        raise PayloadTooLarge(f"an object may be at most {MAX_OBJECT_BYTES} bytes")
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            partial.rename(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return size, digest.hexdigest()

    def get(self, bucket: str, key: str) -> tuple[ObjectInfo, Path]:
        self.check_bucket(bucket)
        info = self.store.get_object(bucket, key)
        if info is None:
            raise NotFound(f"The specified key does not exist: {key}")
        return info, Path(self.node.settings.data_dir) / info.path

    async def delete(self, bucket: str, key: str) -> bool:
        """Delete an object; False when there was none (S3 answers 204 either way)."""
        self.check_bucket(bucket)
        check_key(key)
        removed = await asyncio.to_thread(self.store.delete_object, bucket, key,
                                          self.notifications(bucket, key, "ObjectRemoved:Delete", None),
                                          now=time.time())
        if removed is None:
            return False
        self._remove(removed.path)
        self.sink.wake_events()
        return True

    def list(self, bucket: str, *, prefix: str = "", start_after: str = "",
             limit: int = LIST_LIMIT) -> tuple[list[ObjectInfo], str | None]:
        """A page of objects and the `start_after` of the next page (None at the end)."""
        self.check_bucket(bucket)
        page = self.store.list_objects(bucket, prefix=prefix, start_after=start_after, limit=limit + 1)
        more = len(page) > limit
        page = page[:limit]
        return page, page[-1].key if more and page else None

    def _remove(self, relative: str | None) -> None:
        if relative:
            (Path(self.node.settings.data_dir) / relative).unlink(missing_ok=True)
