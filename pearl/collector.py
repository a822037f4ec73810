"""Python's cyclic garbage collector, kept off work that makes no garbage cycles.

The collector runs whenever allocations outnumber frees by a threshold, and scans every
object that survived earlier runs. Two places pay for that without needing it:

- A projector batch allocates hundreds of thousands of objects (decoded events, rows,
  COPY lines) that reference counting frees when the batch ends. Collections during the
  batch find nothing, promote what is still in use, and the full collections that follow
  scan all of it: a sixth of a catch-up's time went to them. `paused` turns the collector
  off while such work runs.
- A server process imports and builds everything it will keep (modules, the app, its
  routes and schemas) before serving. `freeze_startup` moves those objects out of the
  collector's sight (`gc.freeze`), so a full collection scans only what came later.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator


class _Pause:
    """Nested and concurrent pauses: the collector is back on when the last one ends,
    if it was on when the first began."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._was_enabled = False

    def enter(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._depth += 1

    def leave(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._was_enabled:
                gc.enable()


_pause = _Pause()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The cyclic collector off for the block (any cycles made are collected later)."""
    _pause.enter()
    try:
        yield
    finally:
        _pause.leave()


def freeze_startup() -> None:
    """Collect once, then exempt every object alive now from later collections."""
    gc.collect()
    gc.freeze()
