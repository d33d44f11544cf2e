"""Invocation log records: Lambda's START / END / REPORT lines and the batched writer to the store."""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import Sequence

from squall.store.base import BaseStore, LogRecord
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


def invocation_records(function: str, version: int, request_id: str, lines: Sequence[LogLine],
                       *, started: float, report: str, error_line: str | None = None) -> list[LogRecord]:
    """The stored lines of one invocation: START, what it printed, the error if any, END, REPORT."""
    def record(ts: float, level: LogLevel, message: str) -> LogRecord:
        return LogRecord(function, version, request_id, ts, level, message)

    now = time.time()
    records = [record(started, LogLevel.SYSTEM, start_line(request_id, version))]
    records += [record(line.ts, line.level, line.message) for line in lines]
    if error_line is not None:
        records.append(record(now, LogLevel.ERROR, error_line))
    records.append(record(now, LogLevel.SYSTEM, end_line(request_id)))
    records.append(record(now, LogLevel.SYSTEM, report))
    return records


class LogWriter:
    """Writes log records to the store from one background thread, many invocations per
    transaction, so that the invocation path never waits for a disk."""

    def __init__(self, store: BaseStore, *, batch_interval: float = 0.05, max_batch: int = 5000) -> None:
        self.store = store
        self.batch_interval = batch_interval
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[list[LogRecord] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="squall-log-writer", daemon=True)
        self._idle = threading.Event()
        self._idle.set()

    def start(self) -> None:
        self._thread.start()

    def write(self, records: list[LogRecord]) -> None:
        self._idle.clear()
        self._queue.put(records)

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
            batch, stopping = list(first), False
            time.sleep(self.batch_interval)
            while len(batch) < self.max_batch and not self._queue.empty():
                more = self._queue.get()
                if more is None:
                    stopping = True
                    break
                batch.extend(more)
            self._store(batch)
            if self._queue.empty():
                self._idle.set()
            if stopping:
                return

    def _store(self, batch: list[LogRecord]) -> None:
        try:
            self.store.append_logs(batch)
        except Exception as exc:  # noqa: BLE001 - a log write must never take the node down
            print(f"squall: could not store {len(batch)} log lines: {exc}", flush=True)
