"""Turns the bytes an instance prints into log lines, with a per-invocation cap."""

from __future__ import annotations

import time

from squall.types import LogLevel, LogLine

DEFAULT_LOG_LIMIT = 1024 * 1024
LEVEL_PREFIXES = {f"[{level.value}]\t": level for level in LogLevel if level is not LogLevel.SYSTEM}
LEVEL_PREFIXES["[WARNING]\t"] = LogLevel.WARN
LEVEL_PREFIXES["[CRITICAL]\t"] = LogLevel.FATAL


def parse_line(text: str, ts: float) -> LogLine:
    """A line from Lambda's log format (`[LEVEL]\\t...`) keeps its level; others are INFO."""
    if text.startswith("["):
        for prefix, level in LEVEL_PREFIXES.items():
            if text.startswith(prefix):
                return LogLine(ts, level, text.replace("\r", "\n"))
    return LogLine(ts, LogLevel.INFO, text)


class OutputCollector:
    """Collects one invocation's output. Beyond `limit` bytes it keeps counting, not storing."""

    def __init__(self, limit: int = DEFAULT_LOG_LIMIT) -> None:
        self.limit = limit
        self.lines: list[LogLine] = []
        self.size = 0
        self.dropped = 0
        self._partial = b""

    def feed(self, data: bytes | bytearray) -> None:
        if not data:
            return
        room = self.limit - self.size
        if room <= 0:
            self.dropped += len(data)
            return
        kept = bytes(data[:room])
        self.dropped += len(data) - len(kept)
        self.size += len(kept)
        now = time.time()
        *complete, self._partial = (self._partial + kept).split(b"\n")
        self.lines.extend(parse_line(line.decode("utf-8", "replace"), now) for line in complete)

    def finish(self) -> list[LogLine]:
        """Every line collected so far, with a marker when output was cut; resets the collector."""
        if self._partial:
            self.lines.append(parse_line(self._partial.decode("utf-8", "replace"), time.time()))
        if self.dropped:
            self.lines.append(LogLine(time.time(), LogLevel.WARN,
                                      f"[squall] log output truncated: {self.dropped} bytes over the "
                                      f"{self.limit}-byte limit per invocation were dropped"))
        lines = self.lines
        self.lines, self.size, self.dropped, self._partial = [], 0, 0, b""
        return lines
