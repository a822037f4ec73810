"""An imported world under new ids (`as_copy`): same history, a new chain that says whence.

The copy gets a new world id; each branch's stream id is derived again from it and the
branch name (`branch_id`). Every event keeps its type, version, timestamp, provenance and
content, with the ids that name the world or a branch rewritten: `originator_id`,
`world_id` of a branch's start, `parent_branch_id` of a fork and `branch_id` of a
registration. Entity ids stay as they are (they only need to be unique within a branch).

The chain is computed anew, the way `ChainedAggregate` computes it, over the rewritten
events; a fork links to its parent's new hash at the fork version. The first event of each
stream records where the stream came from in `meta["copied_from"]`: `{"world_id",
"stream_id", "head_hash"}` of the original, which pins the original's whole history.
The original archive is verified before anything is copied (see `ArchiveVerifier`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from commands import branch_events as ev
from commands.archive_format import Header
from commands.archive_verify import Point, VerifiedEvent
from commands.chain import GENESIS_HASH, event_data, event_digest
from commands.world import World, branch_id


class ArchiveCopy:
    """Rewrites verified events, in archive order, into the events of a new world."""

    def __init__(self, header: Header, world_id: UUID) -> None:
        self.header = header
        self.world_id = world_id
        self._ids: dict[UUID, UUID] = {header.world_id: world_id}
        for entry in header.branches:
            assert entry.name is not None
            self._ids[entry.stream_id] = branch_id(world_id, entry.name)
        self._heads = {entry.stream_id: entry.head_hash for entry in header.streams}
        self._last: dict[UUID, str] = {}  # new stream id -> hash of its last new event
        self._points: dict[Point, str] = {}  # original fork point -> its new hash

    def rewrite(self, verified: VerifiedEvent) -> Any:
        original = verified.event
        old_stream = original.originator_id
        new_stream = self._ids[old_stream]
        version = original.originator_version
        state = dict(vars(original))
        state["originator_id"] = new_stream
        state["meta"] = dict(original.meta)
        if version == 1:
            state["meta"]["copied_from"] = {
                "world_id": str(self.header.world_id),
                "stream_id": str(old_stream),
                "head_hash": self._heads[old_stream],
            }
        if isinstance(original, (ev.BranchStarted, ev.BranchForked)):
            state["world_id"] = str(self.world_id)
        if isinstance(original, ev.BranchForked):
            state["parent_branch_id"] = str(self._ids[UUID(original.parent_branch_id)])
        if isinstance(original, World.BranchCreated):
            state["branch_id"] = str(branch_id(self.world_id, original.name))
        if verified.links_to is not None:
            prev_hash = self._points[verified.links_to]
            state["parent_hash"] = prev_hash
        elif version == 1:
            prev_hash = GENESIS_HASH
        else:
            prev_hash = self._last[new_stream]
        state["prev_hash"] = prev_hash
        copy = object.__new__(type(original))
        object.__setattr__(copy, "__dict__", state)
        state["hash"] = event_digest(
            prev_hash,
            stream_id=new_stream,
            version=version,
            event_type=type(original).__name__,
            timestamp=original.timestamp,
            meta=state["meta"],
            data=event_data(copy),
        )
        self._last[new_stream] = state["hash"]
        if verified.is_fork_point:
            self._points[(old_stream, version)] = state["hash"]
        return copy
