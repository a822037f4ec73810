"""Aggregates kept between commands (branches, and the worlds they belong to), so a command
does not replay whole streams.

An aggregate is lent to one command at a time and comes back only when it agrees with the
store: saved, or untouched. One that a command changed without saving (a refusal half-way,
a dry run, a failed save) is dropped, so the cache never needs a copy to stay safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID


class Cacheable(Protocol):
    @property
    def id(self) -> UUID: ...

    @property
    def pending_events(self) -> list[Any]: ...


A = TypeVar("A", bound=Cacheable)


class AggregateCache(Generic[A]):
    def __init__(self, maxsize: int = 64) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[UUID, A] = OrderedDict()
        self._lock = threading.Lock()
        self._scope = threading.local()

    def take(self, stream_id: UUID) -> A | None:
        """Lend the cached aggregate (None outside a command, or when not cached)."""
        lent: list[A] | None = getattr(self._scope, "lent", None)
        if lent is None:
            return None
        with self._lock:
            return self._items.pop(stream_id, None)

    def lent(self, aggregate: A) -> None:
        """Note that the running command holds `aggregate` (fresh or taken from the cache)."""
        lent: list[A] | None = getattr(self._scope, "lent", None)
        if lent is not None:
            lent.append(aggregate)

    def begin(self) -> None:
        self._scope.lent = []

    def end(self, *, consistent: bool) -> None:
        """Take back what the command held: only untouched or saved aggregates, if consistent."""
        lent: list[A] = getattr(self._scope, "lent", None) or []
        self._scope.lent = None
        if not consistent:
            return
        with self._lock:
            for aggregate in lent:
                if aggregate.pending_events:
                    continue  # changed but not saved: the store does not agree with it
                self._items[aggregate.id] = aggregate
                self._items.move_to_end(aggregate.id)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
