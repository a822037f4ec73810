"""Reading the next batch of the log while the current one is applied.

Catching up, the projector is busy in Python (applying, encoding rows) and then waits on
PostgreSQL (COPY, commit). Fetching and decoding the next batch on a thread fills that
wait. Only reading happens ahead: the batch is still applied in its own transaction, after
the one before committed, and only if the projection's position is where the read started
(else it is dropped and read again), so order and exactly-once application are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from eventsourcing.persistence import Notification

Batch = tuple[Sequence[Notification], list[Any]]  # notifications and their decoded events
Fetch = Callable[[int, int], Batch]  # (after position, limit) -> the batch


class ReadAhead:
    """At most one batch read ahead, on one thread; `close` waits for it."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projection-read")
        self._pending: tuple[int, int, Future[Batch]] | None = None

    def start(self, after: int, limit: int) -> None:
        """Begin reading the `limit` events after position `after`."""
        self._drop()
        self._pending = (after, limit, self._pool.submit(self._fetch, after, limit))

    def take(self, after: int, limit: int) -> Batch | None:
        """The batch read ahead if it is the one after `after` of `limit` events, else None.

        A read that failed raises here, as reading it now would have.
        """
        pending = self._pending
        if pending is None or pending[:2] != (after, limit):
            self._drop()
            return None
        self._pending = None
        return pending[2].result()

    def _drop(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not pending[2].cancel():
            pending[2].exception()  # let it finish (its error, if any, is not ours)

    def close(self) -> None:
        self._drop()
        self._pool.shutdown(wait=True)
