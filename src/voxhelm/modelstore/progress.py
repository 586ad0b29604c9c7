"""How a pull shows its progress: a tqdm bar on a terminal, plain lines in logs, or a record
the console polls."""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

LINE_SECONDS = 5.0  # a plain progress line at most this often...
LINE_PERCENT = 10  # ...or at each tenth done


def megabytes(count: int) -> str:
    """A size for people: ``78.1 MB``, ``1.51 GB``."""
    if count >= 1e9:
        return f"{count / 1e9:.2f} GB"
    return f"{count / 1e6:.1f} MB"


class TerminalProgress:
    """tqdm's bar (``tqdm.auto``, the bar huggingface_hub draws too), one for the whole model."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self._bar: Any = None

    def start(self, name: str, total: int, done: int) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=total,
            initial=done,
            desc=name,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=self.stream,
        )

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def finish(self, ok: bool) -> None:
        if self._bar is not None:
            self._bar.close()


class LineProgress:
    """Plain progress lines (logs, pipes): ``pulling small: 40% (31.2 MB of 78.1 MB)``."""

    def __init__(self, write: Any = None) -> None:
        self._write = write or logging.getLogger("voxhelm.models").info
        self.name = ""
        self.total = 0
        self.done = 0
        self._last_time = 0.0
        self._last_step = -1

    def start(self, name: str, total: int, done: int) -> None:
        self.name, self.total, self.done = name, total, done
        self._line(force=True)

    def advance(self, count: int) -> None:
        self.done += count
        self._line()

    def finish(self, ok: bool) -> None:
        if ok:
            self._write(f"pulled {self.name}: {megabytes(self.done)}")

    def _line(self, force: bool = False) -> None:
        percent = 100 * self.done // self.total if self.total else 100
        step = percent // LINE_PERCENT
        now = time.monotonic()
        if force or step != self._last_step or now - self._last_time >= LINE_SECONDS:
            self._last_step, self._last_time = step, now
            self._write(
                f"pulling {self.name}: {percent}% "
                f"({megabytes(self.done)} of {megabytes(self.total)})"
            )


@dataclass
class PullState:
    """One pull as the console shows it (shared between the pulling thread and views)."""

    name: str
    total: int = 0
    done: int = 0
    state: str = "starting"  # starting | downloading | installed | failed
    error: str = ""
    started: float = field(default_factory=time.time)

    @property
    def percent(self) -> int:
        return 100 * self.done // self.total if self.total else 0

    @property
    def done_text(self) -> str:
        return megabytes(self.done)

    @property
    def total_text(self) -> str:
        return megabytes(self.total)


class RecordProgress:
    """Keeps a :class:`PullState` current; reads and writes hold one lock."""

    lock = threading.Lock()

    def __init__(self, state: PullState) -> None:
        self.state = state

    def start(self, name: str, total: int, done: int) -> None:
        with self.lock:
            self.state.total, self.state.done, self.state.state = total, done, "downloading"

    def advance(self, count: int) -> None:
        with self.lock:
            self.state.done += count

    def finish(self, ok: bool) -> None:
        with self.lock:
            self.state.state = "installed" if ok else "failed"
