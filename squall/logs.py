"""Invocation logs: Lambda's START / END / REPORT lines around what an invocation printed; the
background writer that stores them, one batch (one row) per invocation, in bounded memory;
and the retention sweep that deletes what is too old or over the server's cap.

Bounds (docs/limits.md, "Logs"):

* the writers of a server (its root node's and each stage's) hold together at most
  MAX_QUEUE_BYTES of encoded batches waiting for their stores (one `LogBudget`). A batch
  that does not fit is stored shortened (its START, END and REPORT lines and a WARN line
  saying how many bytes were dropped); small batches, those shortened ones included, may use
  SMALL_RESERVE more, so other functions' logs keep flowing while one floods. A batch that
  does not fit even so is dropped whole and counted; a WARN line under its function says how
  many were, once there is room. The invocation path never waits for the store;
* one store write joins batches up to MAX_DOCUMENT_BYTES; a failed write is retried with
  backoff for STORE_RETRY_FOR seconds, then dropped and counted;
* `wait_stored` lets the event dispatcher record an event's result only once the logs
  written before it are stored, so a node killed between the two never keeps a result
  without its logs;
* the sweep (`sweep_logs`, run by the root node's `LogSweeper` every SQUALL_LOG_SWEEP_SECONDS
  over the root store and every stage's) deletes batches older than SQUALL_LOG_RETENTION_DAYS
  (30), then the oldest of all the stores while all of their batches together are over
  SQUALL_LOG_MAX_MB (1024), in small transactions with a pause between them, so that writers
  only ever wait for one small delete.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

import orjson

from squall.settings import LOG_MAX_MB, LOG_RETENTION_DAYS, LOG_SWEEP_SECONDS, Settings
from squall.store.base import BaseStore, LogBatch, StoredLogBatch, encode_log_batch, encode_log_row
from squall.tasks import cancel_and_wait
from squall.types import LogLevel, LogLine

MB = 1024 * 1024
MAX_QUEUE_BYTES = 32 * MB
"""Encoded batches waiting for the store, at most (about 30 invocations that printed their 1 MB)."""
SMALL_BATCH = 8 * 1024
SMALL_RESERVE = 4 * MB
"""Room beyond MAX_QUEUE_BYTES that only batches of SMALL_BATCH bytes or less may use."""
MAX_DOCUMENT_BYTES = 4 * MB
"""Batches joined into one store write, at most (one batch bigger than that goes alone)."""
STORE_RETRY_FOR = 30.0
"""Seconds a store write that fails is retried before its batches are given up."""
RETRY_FIRST, RETRY_MAX = 0.05, 2.0
FLUSH_INTERVAL = 0.005
"""Seconds the writer gathers batches before a store write. A write is a burst of CPU that
takes a core from the event loop, the instances and the clients for its length, so short and
frequent is better than long and rare: back-to-back calls' p99 was 2.9 ms with 50 ms (a
200-batch write each time), 1.0 ms with 5 ms. Under load the writer is never idle and each
write takes whatever queued meanwhile."""
REPORT_EVERY = 10.0
"""Seconds between two lines in the server's output about shortened or dropped batches."""


def start_line(request_id: str, version: int) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(request_id: str, *, duration_ms: float, memory_mb: int, max_memory_mb: int,
                init_ms: float | None) -> str:
    """Lambda's REPORT line; Billed Duration rounds up to the next millisecond."""
    parts = [f"REPORT RequestId: {request_id}", f"Duration: {duration_ms:.2f} ms",
             f"Billed Duration: {max(1, math.ceil(duration_ms))} ms", f"Memory Size: {memory_mb} MB",
             f"Max Memory Used: {max_memory_mb} MB"]
    if init_ms is not None:
        parts.append(f"Init Duration: {init_ms:.2f} ms")
    return "\t".join(parts)


def shortened(batch: LogBatch, size: int) -> LogBatch:
    """`batch` without what the function printed: its START, END and REPORT lines around a
    WARN line saying that `size` bytes of it were dropped."""
    system = [line for line in batch.lines if line.level is LogLevel.SYSTEM]
    marker = LogLine(time.time(), LogLevel.WARN,
                     f"[squall] the {size}-byte log of this invocation was dropped: the node's log queue was "
                     f"full (the store is behind)")
    return LogBatch(batch.function, batch.version, batch.request_id, [*system[:1], marker, *system[1:]])


def dropped_marker(function: str, count: int) -> LogBatch:
    """The WARN line saying that the logs of `count` invocations of `function` were dropped whole."""
    return LogBatch(function, 0, "", [LogLine(time.time(), LogLevel.WARN,
                                              f"[squall] the logs of {count} invocations of {function} were "
                                              f"dropped: the node's log queue was full (the store is behind)")])


def invocation_batch(function: str, version: int, request_id: str, lines: Sequence[LogLine],
                     *, started: float, report: str, error_line: str | None = None) -> LogBatch:
    """The stored lines of one invocation: START, what it printed, the error if any, END, REPORT."""
    now = time.time()
    stored = [LogLine(started, LogLevel.SYSTEM, start_line(request_id, version)), *lines]
    if error_line is not None:
        stored.append(LogLine(now, LogLevel.ERROR, error_line))
    stored.append(LogLine(now, LogLevel.SYSTEM, end_line(request_id)))
    stored.append(LogLine(now, LogLevel.SYSTEM, report))
    return LogBatch(function, version, request_id, stored)


def encode_invocation(function: str, version: int, request_id: str, lines: Sequence[LogLine],
                      *, started: float, report: str, error_line: str | None = None) -> bytes:
    """`encode_log_batch(invocation_batch(...))` in one step: the same bytes, without making
    the batch's objects first (the invocation path's way: it runs once per call)."""
    now = time.time()
    stored: list[object] = [{"ts": started, "level": "SYSTEM", "message": start_line(request_id, version)},
                            *lines]
    if error_line is not None:
        stored.append({"ts": now, "level": "ERROR", "message": error_line})
    stored.append({"ts": now, "level": "SYSTEM", "message": end_line(request_id)})
    stored.append({"ts": now, "level": "SYSTEM", "message": report})
    return encode_log_row(function, version, request_id, started, now, orjson.dumps(stored))


@dataclass
class LogWriterStats:
    """What the writer could not store as it was given (counts of invocations' batches)."""

    shortened: int = 0
    """Stored without what the function printed (the queue was full)."""
    dropped: int = 0
    """Not stored at all (the queue was full even for the shortened batch)."""
    failed: int = 0
    """Given up after the store refused them for STORE_RETRY_FOR seconds (shortened ones
    included; the writer's own WARN lines about dropped batches are not counted)."""


class LogBudget:
    """The bytes that the log writers sharing it (a server's root node and its stages) may hold
    queued together: `max_bytes`, and `reserve` more for batches of SMALL_BATCH bytes or less."""

    def __init__(self, max_bytes: int = MAX_QUEUE_BYTES, reserve: int = SMALL_RESERVE) -> None:
        self.max_bytes = max_bytes
        self.reserve = reserve
        self._lock = threading.Lock()
        self._used = 0

    @property
    def used(self) -> int:
        return self._used

    def take(self, size: int) -> bool:
        """Count `size` more bytes as queued if they fit; False (nothing counted) if not."""
        limit = self.max_bytes + (self.reserve if size <= SMALL_BATCH else 0)
        with self._lock:
            if self._used + size > limit:
                return False
            self._used += size
            return True

    def give_back(self, size: int) -> None:
        with self._lock:
            self._used -= size


class LogWriter:
    """Writes log batches to the store from one background thread, many invocations per
    transaction, so that the invocation path never waits for a disk; in bounded memory (see
    the module docstring): its queue counts against `budget` (shared by a server's writers),
    or a budget of its own of `max_queue_bytes`."""

    def __init__(self, store: BaseStore, *, batch_interval: float = FLUSH_INTERVAL, max_queue_bytes: int = MAX_QUEUE_BYTES,
                 budget: LogBudget | None = None, max_document_bytes: int = MAX_DOCUMENT_BYTES,
                 retry_for: float = STORE_RETRY_FOR) -> None:
        self.store = store
        self.batch_interval = batch_interval
        self.budget = budget if budget is not None else LogBudget(max_queue_bytes)
        self.max_document_bytes = max_document_bytes
        self.retry_for = retry_for
        self.stats = LogWriterStats()
        self._lock = threading.Lock()
        self._stored = threading.Condition(self._lock)
        self._items: deque[tuple[bytes, bool]] = deque()
        """Encoded batches, each with whether it counts in `stats` (not a dropped-marker)."""
        self._queued_bytes = 0
        """Bytes of the batches queued or being stored."""
        self._accepted = 0
        """Batches queued so far; the first `_done` of them are stored (or given up)."""
        self._done = 0
        self._lost: dict[str, int] = {}
        """Batches dropped whole, per function, whose marker is not stored yet."""
        self._work = threading.Event()
        self._hurry = threading.Event()
        self._stopping = False
        self._reported = (0, 0, 0)
        self._next_report = 0.0
        self._thread = threading.Thread(target=self._run, name="squall-log-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def queued_bytes(self) -> int:
        """Bytes of this writer's batches queued or being stored."""
        return self._queued_bytes

    # -- the invocation path ---------------------------------------------------
    def write(self, batch: LogBatch) -> None:
        """Queue `batch`, encoded at once (the queue then holds bytes, which the garbage
        collector need not walk); shortened, or dropped and counted, when the queue is full."""
        self.write_encoded(encode_log_batch(batch), lambda: batch)

    def write_encoded(self, data: bytes, batch: Callable[[], LogBatch]) -> None:
        """`write` of a batch already encoded (`encode_invocation`); `batch()` makes it, for
        the shortened line when the queue is full."""
        if self._offer(data):
            return
        self._shorten_or_drop(batch(), len(data))

    def _shorten_or_drop(self, batch: LogBatch, size: int) -> None:
        if self._offer(encode_log_batch(shortened(batch, size))):
            with self._lock:
                self.stats.shortened += 1
            return
        with self._lock:
            self.stats.dropped += 1
            self._lost[batch.function] = self._lost.get(batch.function, 0) + 1

    def _offer(self, data: bytes, counted: bool = True) -> bool:
        """Queue `data` if it fits in the budget (small batches: the budget and its reserve)."""
        size = len(data)
        if not self.budget.take(size):
            return False
        with self._lock:
            self._queued_bytes += size
            self._items.append((data, counted))
            self._accepted += 1
        if not self._work.is_set():
            self._work.set()
        return True

    # -- waiting for the store -------------------------------------------------
    def written(self) -> int:
        """How many batches were queued so far: `wait_stored(written())` waits for all of them."""
        return self._accepted

    def wait_stored(self, mark: int, timeout: float, *, hurry: bool = True) -> bool:
        """Block (a worker thread, never the event loop) until the first `mark` queued batches
        are stored or given up, for at most `timeout` seconds; True when they are. With
        `hurry` the writer stops gathering and writes at once; without, it keeps its pace
        (a write every `batch_interval` at most) and the waiter waits for it."""
        with self._lock:
            if self._done >= mark:
                return True
        if hurry:
            self._hurry.set()
        with self._stored:
            return self._stored.wait_for(lambda: self._done >= mark, timeout)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything written so far is stored."""
        return self.wait_stored(self._accepted, timeout)

    def stop(self) -> None:
        """Store what is queued (a failing store is not retried any more), then end the thread."""
        self._stopping = True
        self._work.set()
        self._hurry.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    # -- the writer thread -----------------------------------------------------
    def _run(self) -> None:
        while True:
            self._work.wait()
            if not self._stopping:
                self._hurry.wait(self.batch_interval)  # gather more, unless someone waits for them
            self._hurry.clear()
            self._work.clear()  # before draining: what is queued after it wakes the next round
            self._drain()
            self._report()
            if self._stopping and not self._items:
                return

    def _drain(self) -> None:
        while True:
            document, count, counted, size = self._next_document()
            if not count:
                return
            self._store(document, counted)
            self.budget.give_back(size)
            with self._lock:
                self._queued_bytes -= size
                self._done += count
                self._stored.notify_all()
            self._mark_lost()

    def _next_document(self) -> tuple[bytes, int, int, int]:
        """The oldest queued batches as one JSON array of at most max_document_bytes (one batch
        at least), how many, how many of them count in `stats`, and their bytes; they still
        count as queued until stored."""
        parts: list[bytes] = []
        size = counted = 0
        with self._lock:
            while self._items and (not parts or size + len(self._items[0][0]) <= self.max_document_bytes):
                item, counts = self._items.popleft()
                parts.append(item)
                size += len(item)
                counted += counts
        return b"[" + b",".join(parts) + b"]", len(parts), counted, size

    def _store(self, document: bytes, count: int) -> None:
        """Store `document`, retrying with backoff while the store refuses it, for `retry_for`
        seconds (not at all once stopping); then its `count` counted batches are failed."""
        delay, give_up = RETRY_FIRST, time.monotonic() + self.retry_for
        while True:
            try:
                self.store.append_log_document(document)
                return
            except Exception as exc:  # noqa: BLE001 - a log write must never take the node down
                if self._stopping or time.monotonic() + delay > give_up:
                    with self._lock:
                        self.stats.failed += count
                    print(f"squall: could not store the logs of {count} invocations: {exc}", flush=True)
                    return
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    def _mark_lost(self) -> None:
        """Queue one WARN line per function whose batches were dropped whole, if there is room."""
        if not self._lost:
            return
        with self._lock:
            lost, self._lost = self._lost, {}
        for function, count in lost.items():
            if not self._offer(encode_log_batch(dropped_marker(function, count)), counted=False):
                with self._lock:
                    self._lost[function] = self._lost.get(function, 0) + count

    def _report(self) -> None:
        """A line in the server's output when batches were shortened, dropped or failed since the last."""
        now = time.monotonic()
        counts = (self.stats.shortened, self.stats.dropped, self.stats.failed)
        if counts != self._reported and now >= self._next_report:
            self._reported, self._next_report = counts, now + REPORT_EVERY
            print(f"squall: log writer behind the store: {counts[0]} invocations' logs shortened, {counts[1]} "
                  f"dropped, {counts[2]} failed so far", flush=True)


# -- retention -------------------------------------------------------------------
DAY = 86400.0
SWEEP_ROWS = 500
SWEEP_BYTES = 16 * MB
"""One delete of the sweep removes at most this many batches and bytes."""
SWEEP_PAUSE = 0.01
"""Seconds between two deletes of a sweep, so that writers are never kept waiting long."""


@dataclass(frozen=True)
class LogRetention:
    """What the store keeps: batches younger than `max_age` seconds, the newest of them only
    while all together stay under `max_bytes`; swept every `every` seconds."""

    max_age: float = LOG_RETENTION_DAYS.default * DAY
    max_bytes: int = int(LOG_MAX_MB.default * MB)
    every: float = LOG_SWEEP_SECONDS.default

    @classmethod
    def from_settings(cls, settings: Settings) -> LogRetention:
        """The server's SQUALL_LOG_RETENTION_DAYS, SQUALL_LOG_MAX_MB and SQUALL_LOG_SWEEP_SECONDS."""
        return cls(max_age=settings.log_retention_days * DAY, max_bytes=int(settings.log_max_mb * MB),
                   every=settings.log_sweep_seconds)


@dataclass
class Swept:
    """What one sweep deleted: batches past their age, and batches over the size cap."""

    aged: int = 0
    trimmed: int = 0


def sweep_logs(stores: Sequence[BaseStore], retention: LogRetention, *, now: float,
               pause: float = SWEEP_PAUSE) -> Swept:
    """Delete from each of `stores` (a server's root store and its stages') the batches that
    ended before `now - max_age`; then, while all their batches together are over
    `max_bytes`, the oldest of them whichever store holds them (by when they ended). Each
    delete takes at most SWEEP_ROWS batches and SWEEP_BYTES, from one store."""
    swept = Swept()
    cutoff = now - retention.max_age
    for store in stores:
        while expired := _step([(store, b) for b in store.oldest_logs(SWEEP_ROWS) if b.ended < cutoff]):
            swept.aged += store.delete_logs([b.id for _, b in expired])
            time.sleep(pause)
    over = sum(store.log_bytes() for store in stores) - retention.max_bytes
    while over > 0:
        oldest = sorted(((store, b) for store in stores for b in store.oldest_logs(SWEEP_ROWS)),
                        key=lambda pair: (pair[1].ended, pair[1].id))
        chosen = _step(oldest, over)
        if not chosen:
            break
        for store in stores:
            if ids := [b.id for s, b in chosen if s is store]:
                swept.trimmed += store.delete_logs(ids)
        over -= sum(b.size for _, b in chosen)  # what this sweep chose: another node's sweep may share it
        time.sleep(pause)
    return swept


def _step(batches: Sequence[tuple[BaseStore, StoredLogBatch]],
          needed: float = math.inf) -> list[tuple[BaseStore, StoredLogBatch]]:
    """The first of `batches` that one delete round takes: up to SWEEP_BYTES (one at least),
    and no more than `needed` bytes' worth."""
    chosen: list[tuple[BaseStore, StoredLogBatch]] = []
    size = 0
    for store, batch in batches:
        if chosen and (size + batch.size > SWEEP_BYTES or size >= needed):
            break
        chosen.append((store, batch))
        size += batch.size
    return chosen


class LogSweeper:
    """Runs `sweep_logs` over `stores` every `retention.every` seconds in a worker thread, from
    the node's event loop; a failed sweep is reported and tried again at the next. One per
    server: the root node's, to which each stage's node adds its store (`add`, `remove`), so
    that SQUALL_LOG_MAX_MB caps the logs of every stage together."""

    def __init__(self, stores: Sequence[BaseStore], retention: LogRetention) -> None:
        self.stores = list(stores)
        self.retention = retention
        self._task: asyncio.Task[None] | None = None

    def add(self, store: BaseStore) -> None:
        self.stores.append(store)

    def remove(self, store: BaseStore) -> None:
        self.stores = [s for s in self.stores if s is not store]

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    def sweep(self, now: float) -> Swept:
        """One sweep over the stores there are now (a worker thread)."""
        return sweep_logs(tuple(self.stores), self.retention, now=now)

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.sweep, time.time())
            except Exception as exc:  # noqa: BLE001 - the next sweep tries again
                print(f"squall: could not sweep old logs: {exc}", flush=True)
            await asyncio.sleep(self.retention.every)
