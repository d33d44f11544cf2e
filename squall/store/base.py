"""The Store contract: what every backend (SQLite, PostgreSQL) guarantees.

The store is the only state shared between nodes. Methods are synchronous and
thread-safe; async callers run them in a worker thread. Each method documents
what it guarantees; `BaseStore` gives derived operations default
implementations on top of the primitive ones (as huey's BaseStorage does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import orjson

from squall.store.events import EventQueue
from squall.store.notices import NoticeChannel
from squall.store.objects import ObjectStore
from squall.store.queues import QueueStore
from squall.store.releases import ReleaseStore
from squall.store.resources import ResourceStore
from squall.store.schedules import ScheduleStore
from squall.store.secrets import SecretStore
from squall.store.tables import TableStore
from squall.types import LogLevel, LogLine


@dataclass(frozen=True, slots=True)
class NewVersion:
    """A function version to be created by `Store.commit_deploy`."""

    function: str
    code_hash: str
    config: dict[str, Any]
    code_path: str
    provenance: dict[str, Any] = field(default_factory=dict)
    """Where the version came from (squall/provenance.py): git commit, branch, who deployed..."""


@dataclass(frozen=True, slots=True)
class FunctionVersion:
    """An immutable, numbered version of a function (numbers start at 1)."""

    function: str
    number: int
    project: str
    code_hash: str
    config: dict[str, Any]
    code_path: str
    created_at: float
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FunctionRecord:
    """A deployed function and the number of its newest version."""

    name: str
    project: str
    latest: int
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class LogBatch:
    """The lines of one invocation (START, what it printed, END, REPORT), stored as one row:
    one insert per invocation keeps log storage off the request path's budget."""

    function: str
    version: int
    request_id: str
    lines: Sequence[LogLine]


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One stored log line as read back. `id` is the id of the batch it was stored in,
    assigned by the store; every line of a batch shares it."""

    function: str
    version: int
    request_id: str
    ts: float
    level: LogLevel
    message: str
    id: int = field(default=0)


@dataclass(frozen=True, slots=True)
class StoredLogBatch:
    """What the retention sweep sees of one stored log batch: its id, when its last line was
    written, and its size (the bytes of its lines as stored)."""

    id: int
    ended: float
    size: int


def encode_log_batch(batch: LogBatch) -> bytes:
    """A log batch as one row of a log document (`append_log_document`)."""
    lines = batch.lines
    return encode_log_row(batch.function, batch.version, batch.request_id,
                          lines[0].ts if lines else 0.0, lines[-1].ts if lines else 0.0, orjson.dumps(lines))


def encode_log_row(function: str, version: int, request_id: str, ts: float, ts_end: float, lines: bytes) -> bytes:
    """One row of a log document: `[function, version, request_id, ts, ts_end, size, lines]`,
    where `lines` is the JSON array of the batch's lines `[{"ts", "level", "message"}, ...]`
    as a string (stored as it is) and `size` its length in bytes. Positional, with the lines
    already text, so that the store takes each row apart without parsing its lines: a third of
    the CPU of SQLite's insert went to rendering them out of the document again."""
    return orjson.dumps([function, version, request_id, ts, ts_end, len(lines), lines.decode()])


def decode_log_row(row: bytes) -> LogBatch:
    """The batch of one row of a log document (tests, and readers of a document's rows)."""
    function, version, request_id, _ts, _ts_end, _size, lines = orjson.loads(row)
    return LogBatch(function, version, request_id,
                    [LogLine(line["ts"], LogLevel(line["level"]), line["message"]) for line in orjson.loads(lines)])


class BaseStore(EventQueue, ScheduleStore, ResourceStore, QueueStore, ObjectStore, SecretStore, TableStore,
                ReleaseStore, NoticeChannel):
    """Interface of a storage backend. Subclasses implement every method that raises."""

    calls_are_local = False
    """True when a call is short work in this process (no network round trip): a caller on
    the event loop may then make it inline, which costs less than a hop to a thread."""

    # -- lifecycle ---------------------------------------------------------
    def migrate(self, target: int | None = None) -> None:
        """Create or upgrade the schema to the newest version (or to step `target`, which
        tests of a migration use). Idempotent; safe to run on every start."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""
        raise NotImplementedError

    # -- functions and versions -------------------------------------------
    def commit_deploy(self, project: str, versions: Sequence[NewVersion],
                      removed: Sequence[str] = (),
                      resources: Mapping[str, Mapping[str, Any]] | None = None) -> list[FunctionVersion]:
        """Atomically apply one deploy of `project`.

        For each NewVersion: create the function (owned by `project`) if it is
        new, give the version the next number (latest + 1) and make it the
        latest. Functions named in `removed` are deleted with their versions.
        Raises `squall.exceptions.Conflict` (and changes nothing) when a
        function exists and belongs to another project. With `resources` (as
        `Manifest.resources()` gives them) the project's topics, queues and buckets
        become exactly those (Conflict when a name belongs to another project).
        Either all of it is stored or none of it is. Returns the created versions,
        in input order.
        """
        raise NotImplementedError

    def get_function(self, name: str) -> FunctionRecord | None:
        """The function called `name`, or None."""
        raise NotImplementedError

    def list_functions(self, project: str | None = None) -> list[FunctionRecord]:
        """All functions (of `project` when given), ordered by name."""
        raise NotImplementedError

    def get_version(self, function: str, number: int) -> FunctionVersion | None:
        """Version `number` of `function`, or None."""
        raise NotImplementedError

    def list_versions(self, function: str) -> list[FunctionVersion]:
        """Every stored version of `function`, oldest first."""
        raise NotImplementedError

    def latest_version(self, function: str) -> FunctionVersion | None:
        """The newest version of `function`, or None when it does not exist."""
        record = self.get_function(function)
        return None if record is None else self.get_version(function, record.latest)

    def latest_versions(self) -> list[FunctionVersion]:
        """The newest version of every function, ordered by function name."""
        found = (self.get_version(r.name, r.latest) for r in self.list_functions())
        return [v for v in found if v is not None]

    # -- logs --------------------------------------------------------------
    def append_logs(self, batches: Sequence[LogBatch]) -> None:
        """Store `batches` in one transaction, one row each, in order: batch ids increase,
        and a reader tailing with `after_id` never skips a batch that committed late."""
        self.append_log_document(b"[" + b",".join(encode_log_batch(b) for b in batches) + b"]")

    def append_log_document(self, document: bytes) -> None:
        """`append_logs` of batches already encoded: `document` is a JSON array of
        `encode_log_row` rows (the log writer encodes each invocation's batch as it comes, so
        that storing a thousand of them is one SQL statement; batches with no lines, whose
        lines are the 2 bytes `[]`, are skipped)."""
        raise NotImplementedError

    def read_logs(self, function: str, *, since: float | None = None,
                  request_id: str | None = None, after_id: int = 0,
                  limit: int = 1000) -> list[LogRecord]:
        """Log lines of `function` from batches with id > after_id (and of `request_id`,
        when given), oldest first, lines with ts >= since when given; the lines of at most
        `limit` batches, each batch whole."""
        raise NotImplementedError

    def oldest_logs(self, limit: int) -> list[StoredLogBatch]:
        """The `limit` stored log batches with the lowest ids (the first stored), lowest first.
        Reads only what the retention sweep needs, never the lines."""
        raise NotImplementedError

    def delete_logs(self, ids: Sequence[int]) -> int:
        """Delete the log batches `ids` in one short transaction; how many were deleted (a
        batch another node's sweep deleted first is not counted). Nothing else is touched."""
        raise NotImplementedError

    def log_bytes(self) -> int:
        """The size of every stored log batch together (the sum of their `size`): what the
        server-wide log cap is measured against. Read from an index, not from the lines."""
        raise NotImplementedError

    # -- small settings ----------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A node-wide setting stored under `key`, or None."""
        raise NotImplementedError

    def set_meta(self, key: str, value: str) -> None:
        """Store a node-wide setting, replacing any previous value."""
        raise NotImplementedError
