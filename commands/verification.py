"""Tamper evidence: recompute a branch's hash chain from the event store, through its forks.

A branch's chain is its lineage read as one sequence: the root's events up to the first fork
point, then each descendant's events, whose first event (`BranchForked`) links to the parent's
hash at the fork version. `walk_chain` checks such a sequence in memory; `verify_branch` and
`verify_world` read it from the store, page by page, so memory stays flat in its length.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from commands.chain import GENESIS_HASH, digest_of
from commands.errors import NotFound

if TYPE_CHECKING:
    from commands.application import WorldHistory
    from commands.world import World

PAGE_SIZE = 1000


@dataclass(frozen=True)
class Link:
    """One stored event of a chain at its version; `event` is None when it no longer decodes."""

    version: int
    event: Any  # None when it no longer decodes


@dataclass(frozen=True)
class Verdict:
    """How many events were checked, and the version of the first that does not verify."""

    checked: int
    first_invalid_version: int | None

    @property
    def valid(self) -> bool:
        return self.first_invalid_version is None


def walk_chain(links: Iterable[Link], expected_prev: str | None = GENESIS_HASH) -> Verdict:
    """Check every link: its own hash, and that it names its predecessor's hash.

    After a bad link the walk goes on from that event's stored hash, so one tampered event
    does not hide or implicate the ones after it. An event that does not decode leaves the
    next link unchecked against it (its stored hash is unknown).
    """
    prev = expected_prev
    checked = 0
    first_invalid: int | None = None
    for link in links:
        checked += 1
        if first_invalid is None and not link_holds(link.event, prev):
            first_invalid = link.version
        stored = getattr(link.event, "hash", None)
        prev = stored if isinstance(stored, str) else None
    return Verdict(checked, first_invalid)


def link_holds(event: Any | None, expected_prev: str | None) -> bool:
    """The event decodes, links to `expected_prev` (when known) and carries its own digest."""
    if event is None:
        return False
    stored_hash = getattr(event, "hash", None)
    prev_hash = getattr(event, "prev_hash", None)
    if not isinstance(stored_hash, str) or not isinstance(prev_hash, str):
        return False
    if expected_prev is not None and prev_hash != expected_prev:
        return False
    if getattr(event, "parent_hash", prev_hash) != prev_hash:  # a fork names its link twice
        return False
    try:
        return digest_of(event) == stored_hash
    except (AttributeError, TypeError, ValueError):
        return False


# -- reading chains from the event store -------------------------------------------------------


@dataclass(frozen=True)
class StreamRange:
    """Events of one stream: branch version = `base` + stream version - 1, up to `upto`."""

    stream_id: UUID
    base: int
    upto: int | None  # the last branch version taken from this stream (None: all of it)

    @property
    def last_stream_version(self) -> int | None:
        return None if self.upto is None else self.upto - self.base + 1


def branch_ranges(world: World, branch: str) -> list[StreamRange]:
    """The streams that make up a branch's chain, root first, from the world's branch registry."""
    ranges: list[StreamRange] = []
    upto: int | None = None
    current: str | None = branch
    while current is not None:
        entry = world.branches.get(current)
        if entry is None:
            raise NotFound(f"branch {current!r} does not exist in this world")
        forked = entry.get("forked_from")
        base = int(forked["version"]) if forked else 0
        ranges.append(StreamRange(UUID(str(entry["branch_id"])), base, upto))
        if forked:  # the parent counts up to the fork point, or less if a child forked earlier
            upto = base if upto is None else min(upto, base)
        current = str(forked["branch"]) if forked else None
    return ranges[::-1]


def stored_links(
    history: WorldHistory, streams: Iterable[StreamRange], page_size: int = PAGE_SIZE
) -> Iterator[Link]:
    """The streams' stored events in order, decoded where they still decode.

    A gap in a stream's versions (a deleted row) is a link at the first missing version.
    """
    for stream in streams:
        last = stream.last_stream_version
        if last is not None and last < 1:
            continue  # a child forked before this branch's own first event
        after = 0
        while True:
            page = history.recorder.select_events(
                stream.stream_id, gt=after, lte=last, limit=page_size
            )
            for stored in page:
                if stored.originator_version != after + 1:
                    yield Link(stream.base + after, None)
                version = stream.base + stored.originator_version - 1
                try:
                    event = history.mapper.to_domain_event(stored)
                except Exception:  # any row that no longer decodes is a broken link
                    event = None
                yield Link(version, event)
                after = stored.originator_version
            if len(page) < page_size:
                break


def verify_branch(history: WorldHistory, world: World, branch: str) -> Verdict:
    """Recompute the chain of `branch` through its fork points into its ancestors."""
    return walk_chain(stored_links(history, branch_ranges(world, branch)))


def verify_world(history: WorldHistory, world_id: UUID) -> Verdict:
    """Recompute the chain of the world's own stream (settings, members, branch registry)."""
    return walk_chain(stored_links(history, [StreamRange(world_id, 1, None)]))
