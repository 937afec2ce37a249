"""Per-request log lines that cannot flood the log: at most ``limit`` lines per ``window_s``
per event; the next line that gets through says how many were left out (``suppressed``).

During a dependency outage every request fails the same way; a line per request (hundreds a
second) adds to the load and buries the first, useful lines. Metrics count every failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class _Window:
    started: float = 0.0
    lines: int = 0
    suppressed: int = 0


@dataclass
class LogRate:
    """``allow(event)`` -> ``None`` (leave the line out) or how many were left out before it."""

    limit: int = 5
    window_s: float = 10.0
    _windows: dict[str, _Window] = field(default_factory=dict)

    def allow(self, event: str) -> int | None:
        now = time.monotonic()
        window = self._windows.setdefault(event, _Window(now))
        if now - window.started >= self.window_s:
            window.started, window.lines = now, 0
        if window.lines >= self.limit:
            window.suppressed += 1
            return None
        window.lines += 1
        suppressed, window.suppressed = window.suppressed, 0
        return suppressed


FAILURES = LogRate()  # this process's per-request failure and refusal lines
