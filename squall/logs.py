"""Invocation logs: Lambda's START / END / REPORT lines around what an invocation printed, and
the background writer that stores them, one batch (one row) per invocation."""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import Sequence

from squall.store.base import BaseStore, LogBatch, encode_log_batch
from squall.types import LogLevel, LogLine


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


class LogWriter:
    """Writes log batches to the store from one background thread, many invocations per
    transaction, so that the invocation path never waits for a disk."""

    def __init__(self, store: BaseStore, *, batch_interval: float = 0.05, max_batch: int = 10_000) -> None:
        self.store = store
        self.batch_interval = batch_interval
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="squall-log-writer", daemon=True)
        self._idle = threading.Event()
        self._idle.set()

    def start(self) -> None:
        self._thread.start()

    def write(self, batch: LogBatch) -> None:
        """Queue `batch`, encoded at once: the queue then holds bytes, which the garbage
        collector need not walk however far the writer falls behind."""
        self._idle.clear()
        self._queue.put(encode_log_batch(batch))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything written so far is stored."""
        deadline = time.monotonic() + timeout
        while not self._queue.empty() or not self._idle.is_set():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batches, stopping = [first], False
            time.sleep(self.batch_interval)
            while len(batches) < self.max_batch and not self._queue.empty():
                more = self._queue.get()
                if more is None:
                    stopping = True
                    break
                batches.append(more)
            self._store(batches)
            if self._queue.empty():
                self._idle.set()
            if stopping:
                return

    def _store(self, batches: list[bytes]) -> None:
        try:
            self.store.append_log_document(b"[" + b",".join(batches) + b"]")
        except Exception as exc:  # noqa: BLE001 - a log write must never take the node down
            print(f"squall: could not store the logs of {len(batches)} invocations: {exc}", flush=True)
