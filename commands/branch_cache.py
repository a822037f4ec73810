"""Aggregates kept between commands (branches, and the worlds they belong to), so a command
does not replay whole streams.

An aggregate is lent to one command at a time and comes back only when it agrees with the
store: saved, or untouched. One that a command changed without saving (a refusal half-way,
a dry run, a failed save) is dropped, so the cache never needs a copy to stay safe.

The cache holds at most `maxsize` aggregates and at most `budget` units of `weight` in all
(for branches: entities, which is what their memory grows with), dropping the least
recently used first; an aggregate heavier than the whole budget is not kept at all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID


class Cacheable(Protocol):
    @property
    def id(self) -> UUID: ...

    @property
    def pending_events(self) -> list[Any]: ...


A = TypeVar("A", bound=Cacheable)


def one(_: Any) -> int:
    """The default weight: every aggregate counts the same."""
    return 1


class AggregateCache(Generic[A]):
    def __init__(
        self,
        maxsize: int = 64,
        *,
        budget: int | None = None,
        weight: Callable[[A], int] = one,
    ) -> None:
        self.maxsize = maxsize
        self.budget = budget
        self.weight = weight
        self.total = 0  # the weight of what is cached now
        self._items: OrderedDict[UUID, tuple[A, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._scope = threading.local()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, stream_id: UUID) -> bool:
        return stream_id in self._items

    def take(self, stream_id: UUID) -> A | None:
        """Lend the cached aggregate (None outside a command, or when not cached)."""
        lent: list[A] | None = getattr(self._scope, "lent", None)
        if lent is None:
            return None
        with self._lock:
            found = self._items.pop(stream_id, None)
            if found is None:
                return None
            self.total -= found[1]
            return found[0]

    def lent(self, aggregate: A) -> None:
        """Note that the running command holds `aggregate` (fresh or taken from the cache)."""
        lent: list[A] | None = getattr(self._scope, "lent", None)
        if lent is not None:
            lent.append(aggregate)

    def give_back(self, aggregate: A) -> None:
        """Return an aggregate the command took but leaves as it found it (no longer lent)."""
        lent: list[A] = getattr(self._scope, "lent", None) or []
        for index, held in enumerate(lent):
            if held is aggregate:
                del lent[index]
                break
        with self._lock:
            self._keep(aggregate)

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
                self._keep(aggregate)

    def make_room(self, weight: int) -> None:
        """Evict the least recently used until `weight` more would fit the budget (called as
        a branch loads, so a process never holds the whole budget and a big load on top)."""
        if self.budget is None:
            return
        with self._lock:
            while self._items and self.total + weight > self.budget:
                _, (_, dropped) = self._items.popitem(last=False)
                self.total -= dropped

    def _keep(self, aggregate: A) -> None:
        """Cache `aggregate` as the most recently used, then evict down to the limits (under
        the lock)."""
        weight = self.weight(aggregate)
        old = self._items.pop(aggregate.id, None)
        if old is not None:
            self.total -= old[1]
        if self.budget is not None and weight > self.budget:
            return  # bigger than the whole budget: never kept
        self._items[aggregate.id] = (aggregate, weight)
        self.total += weight
        while len(self._items) > self.maxsize or (
            self.budget is not None and self.total > self.budget
        ):
            _, (_, dropped) = self._items.popitem(last=False)
            self.total -= dropped


class BranchTurns:
    """Commands on one branch take turns within a process.

    A branch is lent to one command at a time, so a second command on the same branch in
    another thread (gunicorn's threaded workers) would find the cache empty and replay the
    branch from its start: a second copy in memory (about 100 MB for 100,000 entities) and
    a race on the stream that one of them loses anyway. Waiting for the first to give the
    branch back costs neither. Locks are striped by branch, so commands on different
    branches seldom wait for each other (and never for long).
    """

    def __init__(self, stripes: int = 1024) -> None:
        self._locks = [threading.RLock() for _ in range(stripes)]

    def of(self, world_id: UUID | None, branch: str | None) -> AbstractContextManager[Any]:
        """The turn of (world, branch); no waiting for commands that name no branch."""
        if world_id is None or branch is None:
            return nullcontext()
        return self._locks[hash((world_id, branch)) % len(self._locks)]
