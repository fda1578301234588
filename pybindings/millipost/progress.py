"""A dependency-free progress bar for long runs (stderr; quiet when stderr is not a terminal)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, stream=None, unit: str = "items",
                 rate: bool = True):
        self.total = max(total, 1)
        self.rate = rate  # False: no done/s figure (when `extra` has better rates)
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self._last = 0.0

    def update(self, done: int, extra: str = "") -> None:
        now = time.monotonic()
        if not self.tty or (now - self._last < 0.1 and done < self.total):
            return
        self._last = now
        frac = min(done / self.total, 1.0)
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        rate = f"{done / max(now - self.start, 1e-9):,.0f}/s " if self.rate else ""
        self.stream.write(f"\r{self.label} [{bar}] {done:,}/{self.total:,} {self.unit} "
                          f"{rate}{extra}   ")
        self.stream.flush()

    def close(self) -> float:
        elapsed = time.monotonic() - self.start
        if self.tty:
            self.stream.write("\n")
        return elapsed
