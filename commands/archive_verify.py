"""Verifying an archive as it streams past: order, versions, the chain, what events say.

`ArchiveVerifier(header, transcoder)` takes the event lines one at a time (`check`) and is
told where the archive ended (`finish`); every refusal is an `ArchiveError` naming the line.
It holds one stream's state at a time, plus, for each fork still ahead, the hash and the
live entity ids that fork starts from: memory does not grow with the length of a history.

- Streams come in the header's order, each complete, in version order from 1, ending on the
  header's `head_hash`. The world stream comes first; when it ends, its branch registry must
  list the header's branches in the same order, and it says where each fork starts.
- A stream's first event starts it (WorldCreated; BranchStarted for a branch registered
  without a parent, BranchForked naming the registered parent, version and parent stream
  id); no later event does. Every branch names this world and its own name.
- The chain: each `prev_hash` is the predecessor's `hash` (a stream starts from
  GENESIS_HASH, a fork from its parent's hash at the fork version, looked up through the
  parent's own parents when that version lies before the parent's fork point, exactly as
  `WorldHistory.hash_at` does) and each `hash` is what `digest_of` recomputes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import CanInitAggregate
from eventsourcing.persistence import Transcoder

from commands import branch_events as ev
from commands.archive_decoding import decode
from commands.archive_format import ArchiveError, Header, StreamEntry, parse_event_line
from commands.archive_rules import BranchContent, WorldReplay
from commands.chain import GENESIS_HASH, digest_of
from commands.errors import InvalidCommand
from commands.world import World, branch_id

Point = tuple[UUID, int]  # (stream id, stream version)


@dataclass(slots=True)  # not frozen: one is made per line, and frozen fields cost 5x to set
class VerifiedEvent:
    line: int
    stream: StreamEntry
    event: Any
    links_to: Point | None  # a fork's first event: the parent's event its chain continues
    is_fork_point: bool  # a fork's chain continues from this event


@dataclass
class _ForkStart:
    """Where a fork starts, and once the archive has passed there, what it starts from."""

    point: Point
    description: str
    hash: str | None = None
    live: frozenset[int] = frozenset()


class ArchiveVerifier:
    def __init__(self, header: Header, transcoder: Transcoder) -> None:
        for entry in header.branches:
            assert entry.name is not None
            if entry.stream_id != branch_id(header.world_id, entry.name):
                raise ArchiveError(
                    1, f"the stream id of branch {entry.name!r} is not the one its name derives"
                )
        self.header = header
        self._transcoder = transcoder
        self._ahead = list(reversed(header.streams))
        self._stream: StreamEntry | None = None
        self._finished: StreamEntry | None = None
        self._version = 0
        self._hash = GENESIS_HASH
        self._world = WorldReplay()
        self._content = BranchContent()
        self._forks: dict[UUID, _ForkStart] = {}
        self._points: dict[Point, list[_ForkStart]] = {}

    def check(self, number: int, raw: bytes) -> VerifiedEvent:
        """Verify one event line (`number` counts from 1, the header being line 1)."""
        line = parse_event_line(raw, number, self._transcoder.decode)
        stream = self._enter(line.stream_id, line.stream_version, number)
        event = decode(line, stream.kind)
        links_to = None
        if line.stream_version == 1:
            expected_prev, links_to = self._start(stream, event, number)
        elif isinstance(event, CanInitAggregate):
            raise ArchiveError(number, "only a stream's first event may start it")
        else:
            expected_prev = self._hash
        self._check_chain(event, expected_prev, links_to, number)
        try:
            if stream.kind == "world":
                self._world.check(event)
            else:
                self._content.check(event)
        except InvalidCommand as error:
            raise ArchiveError(number, error.detail) from None
        except (TypeError, ValueError, KeyError) as error:  # a value no check foresaw
            raise ArchiveError(number, f"the event is malformed ({error!r})") from None
        self._version, self._hash = line.stream_version, event.hash
        is_fork_point = self._pass_point((stream.stream_id, line.stream_version))
        if self._version == stream.events:
            self._leave(stream, number)
        return VerifiedEvent(number, stream, event, links_to, is_fork_point)

    def finish(self, number: int) -> None:
        """The archive ended before line `number`: every stream must be complete."""
        if self._stream is not None:
            raise ArchiveError(
                number,
                f"the archive ends early: {self._stream.describe()} has {self._version} of "
                f"the {self._stream.events} events the header lists",
            )
        if self._ahead:
            raise ArchiveError(
                number, f"the archive ends early: {self._ahead[-1].describe()} is missing"
            )

    # -- order ------------------------------------------------------------------------------

    def _enter(self, stream_id: UUID, version: int, number: int) -> StreamEntry:
        if self._stream is None:
            finished = self._finished
            if finished is not None and stream_id == finished.stream_id:
                raise ArchiveError(
                    number,
                    f"{finished.describe()} has more events than the header's {finished.events}",
                )
            if not self._ahead:
                raise ArchiveError(number, "an event after the last stream the header lists")
            self._stream, self._version, self._hash = self._ahead.pop(), 0, GENESIS_HASH
        stream = self._stream
        if stream_id != stream.stream_id:
            raise ArchiveError(
                number,
                f"expected event {self._version + 1} of {stream.describe()} "
                f"({stream.stream_id}) but found stream {stream_id}: events are missing "
                "or out of order",
            )
        if version != self._version + 1:
            raise ArchiveError(
                number,
                f"expected version {self._version + 1} of {stream.describe()}, found {version}",
            )
        return stream

    def _leave(self, stream: StreamEntry, number: int) -> None:
        if self._hash != stream.head_hash:
            raise ArchiveError(
                number,
                f"{stream.describe()} ends on hash {self._hash}, not on the header's "
                f"head_hash {stream.head_hash}",
            )
        if stream.kind == "world":
            self._plan_forks(number)
        self._stream, self._finished = None, stream

    # -- starts and forks -------------------------------------------------------------------

    def _start(self, stream: StreamEntry, event: Any, number: int) -> tuple[str, Point | None]:
        """The hash a stream's first event must link to, and the point it continues."""
        if stream.kind == "world":
            if not isinstance(event, World.WorldCreated):
                raise ArchiveError(number, "the world stream must start with WorldCreated")
            return GENESIS_HASH, None
        registered = self._world.branches[str(stream.name)]
        if event.world_id != str(self.header.world_id) or event.name != stream.name:
            raise ArchiveError(
                number, f"the stream of {stream.describe()} names another world or branch"
            )
        forked = registered["forked_from"]
        if forked is None:
            if not isinstance(event, ev.BranchStarted):
                raise ArchiveError(number, f"{stream.describe()} must start with BranchStarted")
            self._content = BranchContent()
            return GENESIS_HASH, None
        if not isinstance(event, ev.BranchForked):
            raise ArchiveError(number, f"{stream.describe()} must start with BranchForked")
        parent = forked["branch"]
        if (
            event.parent_branch != parent
            or event.at_version != forked["version"]
            or event.parent_branch_id != str(branch_id(self.header.world_id, parent))
        ):
            raise ArchiveError(
                number,
                f"{stream.describe()} starts from another parent or version than the world "
                f"registered ({parent!r} at {forked['version']})",
            )
        start = self._forks.pop(stream.stream_id)
        if start.hash is None:
            raise ArchiveError(
                number,
                f"{stream.describe()} forks from {start.description}, which the "
                "archive does not hold before it",
            )
        if event.parent_hash != start.hash:
            raise ArchiveError(
                number, f"parent_hash is not the hash of {start.description} (tampered?)"
            )
        self._content = BranchContent(start.live)
        return start.hash, start.point

    def _plan_forks(self, number: int) -> None:
        """After the world stream: check its registry, and note where each fork starts."""
        registry = self._world.branches
        listed = [entry.name for entry in self.header.branches]
        if list(registry) != listed:
            raise ArchiveError(
                number,
                f"the world registers branches {list(registry)} but the header lists {listed}",
            )
        world_id = self.header.world_id
        base = {
            name: 0 if entry["forked_from"] is None else int(entry["forked_from"]["version"])
            for name, entry in registry.items()
        }
        for name, entry in registry.items():
            forked = entry["forked_from"]
            if forked is None:
                continue
            owner, version = forked["branch"], int(forked["version"])
            while version < base[owner]:  # that version of the parent is its parent's
                owner = registry[owner]["forked_from"]["branch"]
            point = (branch_id(world_id, owner), version - base[owner] + 1)
            start = _ForkStart(point, f"version {version} of branch {forked['branch']!r}")
            self._forks[branch_id(world_id, name)] = start
            self._points.setdefault(point, []).append(start)

    def _pass_point(self, point: Point) -> bool:
        waiting = self._points.pop(point, None)
        if waiting is None:
            return False
        live = self._content.snapshot()
        for start in waiting:
            start.hash, start.live = self._hash, live
        return True

    # -- chain ------------------------------------------------------------------------------

    @staticmethod
    def _check_chain(event: Any, expected_prev: str, links_to: Point | None, number: int) -> None:
        if event.prev_hash != expected_prev:
            where = "its parent's hash at the fork" if links_to else "the previous event's hash"
            raise ArchiveError(
                number,
                f"prev_hash does not link to {where}: an event is missing, added, "
                "reordered or changed",
            )
        try:
            digest = digest_of(event)
        except (TypeError, ValueError) as error:
            raise ArchiveError(number, f"the event cannot be hashed ({error})") from None
        if digest != event.hash:
            raise ArchiveError(
                number, "hash does not match the event's content: the event was changed"
            )
