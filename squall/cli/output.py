"""How the CLI prints: JSON for `--json`, rich tables and lines for people, errors on stderr.

Every command prints through these functions so that `--json` and errors look the
same everywhere. Consoles are made per call: they write to whatever `sys.stdout` /
`sys.stderr` is at that moment (the terminal, a pipe, click's test runner).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

LEVEL_STYLES = {"SYSTEM": "dim", "WARN": "yellow", "ERROR": "red", "FATAL": "bold red",
                "DEBUG": "cyan", "TRACE": "cyan"}


def stdout_console() -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


def stderr_console() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def print_json(obj: Any) -> None:
    """Pretty JSON (2-space indent) on stdout."""
    _write_stdout(orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")


def print_json_line(obj: Any) -> None:
    """One compact JSON object on one line (JSON Lines), flushed at once."""
    _write_stdout(orjson.dumps(obj) + b"\n")


def _write_stdout(data: bytes) -> None:
    sys.stdout.write(data.decode())
    sys.stdout.flush()


PIPED_TABLE_WIDTH = 400
"""Width of a table printed to a pipe or file: rows stay whole for grep and friends."""


def print_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A rich table with a bold header row on stdout (fitted to a terminal; whole rows,
    without trailing blanks, when stdout is a pipe or a file)."""
    table = Table(*columns, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        table.add_row(*row)
    if sys.stdout.isatty():
        Console(file=sys.stdout, highlight=False).print(table)
        return
    console = Console(file=io.StringIO(), highlight=False, width=PIPED_TABLE_WIDTH)
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    sys.stdout.write("".join(line.rstrip() + "\n" for line in text.splitlines()))
    sys.stdout.flush()


def print_message(message: str, style: str | None = None) -> None:
    """A line for people on stdout (no markup is interpreted)."""
    stdout_console().print(Text(message, style=style or ""))


def print_error(message: str) -> None:
    """`error: <message>` in red on stderr."""
    stderr_console().print(Text(f"error: {message}", style="red"))


def print_warning(message: str) -> None:
    """`warning: <message>` in yellow on stderr."""
    stderr_console().print(Text(f"warning: {message}", style="yellow"))


def format_ts(ts: float) -> str:
    """`2026-11-23T09:40:01.123Z` (UTC, milliseconds)."""
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def relative_time(ts: float, now: float) -> str:
    """`just now`, `42s ago`, `5m ago`, `3h ago`, `2d ago` (or `in 5m` for the future)."""
    delta = now - ts
    if abs(delta) < 1:
        return "just now"
    amount = abs(delta)
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if amount >= seconds:
            text = f"{int(amount // seconds)}{unit}"
            return f"{text} ago" if delta > 0 else f"in {text}"
    return "just now"


def print_log_line(line: dict[str, Any]) -> None:
    """`<ts>  <request id>  <LEVEL>  <message>`; SYSTEM lines (START/END/REPORT) dimmed."""
    level = str(line.get("level", ""))
    request_id = str(line.get("request_id") or "-")
    text = f"{format_ts(float(line['ts']))}  {request_id}  {level:<6}  {line.get('message', '')}"
    stdout_console().print(Text(text.rstrip("\n"), style=LEVEL_STYLES.get(level, "")))
