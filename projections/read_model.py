"""The read-model projector: applies each stored event to the read tables.

Every method runs inside the caller's transaction, which also advances the projection's
position, so a batch is applied exactly once or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, case, literal, select, update

from commands import branch_events as ev
from commands.dates import Calendar
from commands.proposal import Proposal
from commands.world import World
from projections import change_log
from projections import tables as t
from projections.bulk_copy import copy_lines
from projections.content_events import project_content
from projections.content_rows import ContentRows, Ids, Ordinals, ordinals

# (world id, base version, world id as text, branch id as text) of a branch
BranchInfo = tuple[UUID, int, str, str]
HEADS_AND_POSITIONS = (
    f"UPDATE {t.branches.name} AS b SET head_version = v.head"
    " FROM unnest(%s::uuid[], %s::bigint[]) AS v (id, head) WHERE b.branch_id = v.id;"
    f" UPDATE {t.worlds.name} AS w SET last_position = v.position"
    " FROM unnest(%s::uuid[], %s::bigint[]) AS v (id, position) WHERE w.id = v.id"
)


class ReadModel:
    """Applies domain events to the read tables on one connection."""

    def __init__(self, conn: Connection, branches: dict[UUID, BranchInfo] | None = None) -> None:
        """`branches`: what is known of branches (it never changes), kept across batches by
        the caller, or else for this batch only."""
        self.conn = conn
        self._calendars: dict[UUID, Ordinals] = {}
        self._branches: dict[UUID, BranchInfo] = {} if branches is None else branches
        # Written once per batch by flush(): change-log rows, branch heads, world positions.
        self._changes: list[change_log.Change] = []  # encoded as the COPY reads them
        self._heads: dict[UUID, int] = {}
        self._world_positions: dict[UUID, int] = {}
        self.ids = Ids()
        self.rows = ContentRows(conn, self.ids)

    def prefetch(self, events: list[Any]) -> None:
        self.rows.prefetch(events)

    def apply(self, position: int, event: Any) -> None:
        cls = type(event)
        handler = _HANDLERS.get(cls)
        if handler is None:
            handler = _HANDLERS[cls] = _handler(cls)
        if handler is project_content:  # most events: it logs their change itself
            project_content(self, event, position)
            return
        self._log_change(position, event)
        handler(self, event, position)

    def flush(self, then: tuple[str, tuple[Any, ...]] | None = None) -> None:
        """Write what the batch deferred; call before committing the batch.

        `then`, a statement and its parameters, runs after the rest in the same round trip
        as the branch heads and world positions (the runner's new position).
        """
        self.rows.flush()
        cursor: Any = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if self._changes:
                lines = (change_log.change_line(*change) for change in self._changes)
                copy_lines(cursor, t.changes.name, change_log.COLUMNS, lines)
            statements, parameters = [], []
            if self._heads or self._world_positions:
                statements.append(HEADS_AND_POSITIONS)
                parameters += [
                    [str(branch_id) for branch_id in self._heads],
                    list(self._heads.values()),
                    [str(world_id) for world_id in self._world_positions],
                    list(self._world_positions.values()),
                ]
            if then is not None:
                statements.append(then[0])
                parameters += then[1]
            if statements:  # all of them in one round trip
                cursor.execute("; ".join(statements), parameters)
        finally:
            cursor.close()
        self._changes, self._heads, self._world_positions = [], {}, {}

    # -- change log -------------------------------------------------------------------------

    def _log_change(self, position: int, event: Any) -> None:
        """Queue the change row of an event (content events log their own: `project_content`)."""
        branch_text: str | None
        if isinstance(event, World.Event):
            world_id, branch_text = event.originator_id, None
            version = event.originator_version
        elif isinstance(event, Proposal.Event):
            world_id = self._proposal_world(event)
            branch_text, version = None, event.originator_version
        else:
            if isinstance(event, (ev.BranchStarted, ev.BranchForked)):
                world_id = UUID(event.world_id)
                base = 0 if isinstance(event, ev.BranchStarted) else event.at_version
                self._remember_branch(event.originator_id, world_id, base)
            world_id, base, _, branch_text = self._branch(event.originator_id)
            version = base + event.originator_version - 1
        entity_id = getattr(event, "entity_id", None)
        entity_text = self.ids(entity_id) if entity_id else None
        self._changes.append(
            (position, event, self.ids(world_id), branch_text, version, entity_text)
        )

    def _proposal_world(self, event: Any) -> UUID:
        if isinstance(event, Proposal.ProposalRequested):
            return UUID(event.world_id)
        return UUID(
            str(
                self.conn.execute(
                    select(t.proposals.c.world_id).where(t.proposals.c.id == event.originator_id)
                ).scalar_one()
            )
        )

    def _branch(self, branch_id: UUID) -> BranchInfo:
        """(world id, base version, both ids as text) of a branch, cached for this batch."""
        found = self._branches.get(branch_id)
        if found is None:
            row = self.conn.execute(
                select(t.branches.c.world_id, t.branches.c.base_version).where(
                    t.branches.c.branch_id == branch_id
                )
            ).one()
            found = self._remember_branch(branch_id, row.world_id, int(row.base_version))
        return found

    def _remember_branch(self, branch_id: UUID, world_id: UUID, base: int) -> BranchInfo:
        found = (world_id, base, self.ids(world_id), self.ids(branch_id))
        self._branches[branch_id] = found
        return found

    def _ordinals(self, world_id: UUID) -> Ordinals:
        """The in-world sort keys of the world's calendar (cached for this batch)."""
        if world_id not in self._calendars:
            data = self.conn.execute(
                select(t.worlds.c.calendar).where(t.worlds.c.id == world_id)
            ).scalar_one()
            self._calendars[world_id] = Ordinals(Calendar.from_dict(data))
        return self._calendars[world_id]

    # -- worlds -------------------------------------------------------------------------------

    @singledispatchmethod
    def project(self, event: Any, position: int) -> None:
        raise TypeError(f"no projection for {type(event).__name__}")

    @project.register
    def _(self, event: World.WorldCreated, position: int) -> None:
        self.conn.execute(
            t.worlds.insert().values(
                id=event.originator_id,
                name=event.name,
                description=event.description,
                calendar=event.calendar,
                default_branch="main",
                created_at=event.timestamp,
                version=event.originator_version,
                last_position=position,
            )
        )
        self.conn.execute(
            t.members.insert().values(
                world_id=event.originator_id, user_id=UUID(event.owner_id), role="owner"
            )
        )

    @project.register
    def _(self, event: World.WorldRenamed, position: int) -> None:
        self._touch_world(event, position, name=event.name)

    @project.register
    def _(self, event: World.WorldDescribed, position: int) -> None:
        self._touch_world(event, position, description=event.description)

    @project.register
    def _(self, event: World.CalendarDefined, position: int) -> None:
        self._touch_world(event, position, calendar=event.calendar)
        world_id = event.originator_id
        calendar = Calendar.from_dict(event.calendar)
        self._calendars[world_id] = Ordinals(calendar)
        self.rows.flush()
        rows = self.conn.execute(
            select(
                t.timeline_events.c.row_id, t.timeline_events.c.start, t.timeline_events.c.end
            ).where(t.timeline_events.c.world_id == world_id)
        ).all()
        for row in rows:
            start_ordinal, end_ordinal = ordinals(calendar, row.start, row.end)
            self.conn.execute(
                update(t.timeline_events)
                .where(t.timeline_events.c.row_id == row.row_id)
                .values(start_ordinal=start_ordinal, end_ordinal=end_ordinal)
            )

    @project.register
    def _(self, event: World.MemberAdded, position: int) -> None:
        self._touch_world(event, position)
        self.conn.execute(
            t.members.insert().values(
                world_id=event.originator_id, user_id=UUID(event.user_id), role=event.role
            )
        )

    @project.register
    def _(self, event: World.MemberRoleChanged, position: int) -> None:
        self._touch_world(event, position)
        self.conn.execute(
            update(t.members)
            .where(
                t.members.c.world_id == event.originator_id,
                t.members.c.user_id == UUID(event.user_id),
            )
            .values(role=event.role)
        )

    @project.register
    def _(self, event: World.MemberRemoved, position: int) -> None:
        self._touch_world(event, position)
        self.conn.execute(
            t.members.delete().where(
                t.members.c.world_id == event.originator_id,
                t.members.c.user_id == UUID(event.user_id),
            )
        )

    @project.register
    def _(self, event: World.BranchCreated, position: int) -> None:
        self._touch_world(event, position)

    def _touch_world(self, event: Any, position: int, **values: Any) -> None:
        self.conn.execute(
            update(t.worlds)
            .where(t.worlds.c.id == event.originator_id)
            .values(version=event.originator_version, **values)
        )
        self._touch_world_position(event.originator_id, position)

    # -- proposals ------------------------------------------------------------------------

    @project.register(Proposal.ProposalRequested)
    def _(self, event: Any, position: int) -> None:
        self.conn.execute(
            t.proposals.insert().values(
                id=event.originator_id,
                world_id=UUID(event.world_id),
                branch=event.branch,
                kind=event.kind,
                params=event.params,
                status="pending",
                requested_by=event.meta.get("actor") or "system",
                created_at=event.timestamp,
                updated_at=event.timestamp,
                version=event.originator_version,
                created_seq=position,
            )
        )

    @project.register
    def _(self, event: Proposal.ProposalReady, position: int) -> None:
        self._touch_proposal(
            event,
            status="ready",
            edits=event.edits,
            dropped=event.dropped,
            flags=event.flags,
            provider=event.provider,
            model=event.model,
            prompt_version=event.prompt_version,
            usage=event.usage,
        )

    @project.register
    def _(self, event: Proposal.ProposalFailed, position: int) -> None:
        self._touch_proposal(event, status="failed", reason=event.reason)

    @project.register
    def _(self, event: Proposal.ProposalAccepted, position: int) -> None:
        self._touch_proposal(
            event, status="accepted", accepted=event.indexes, reviewed_by=event.meta.get("actor")
        )

    @project.register
    def _(self, event: Proposal.ProposalRejected, position: int) -> None:
        self._touch_proposal(
            event, status="rejected", reason=event.reason, reviewed_by=event.meta.get("actor")
        )

    def _touch_proposal(self, event: Any, **values: Any) -> None:
        self.conn.execute(
            update(t.proposals)
            .where(t.proposals.c.id == event.originator_id)
            .values(updated_at=event.timestamp, version=event.originator_version, **values)
        )

    # -- branches -------------------------------------------------------------------------

    @project.register
    def _(self, event: ev.BranchStarted, position: int) -> None:
        self._insert_branch(event, position, base=0, forked_from=None)

    @project.register
    def _(self, event: ev.BranchForked, position: int) -> None:
        self._insert_branch(
            event,
            position,
            base=event.at_version,
            forked_from={"branch": event.parent_branch, "version": event.at_version},
        )
        self._copy_parent_rows(event)

    def _copy_parent_rows(self, event: ev.BranchForked) -> None:
        """Give the fork the parent's rows up to the fork version: it reads as fast as main.

        Rows still current at the fork version become the fork's current rows; older ones
        keep their ranges, so as-of reads below the fork version answer as the parent did.
        """
        self.rows.flush()
        parent = UUID(event.parent_branch_id)
        at = event.at_version
        for table in t.CONTENT.values():
            names = [c.name for c in table.columns if c.name not in ("row_id", "search")]
            values = [
                literal(event.originator_id).label(name)
                if name == "branch_id"
                else case((table.c.valid_to > at, None), else_=table.c.valid_to).label(name)
                if name == "valid_to"
                else table.c[name]
                for name in names
            ]
            rows = select(*values).where(table.c.branch_id == parent, table.c.valid_from <= at)
            self.conn.execute(table.insert().from_select(names, rows))

    @project.register
    def _(self, event: ev.BranchMerged, position: int) -> None:
        self._advance_branch(event, position)

    @project.register
    def _(self, event: ev.BranchReverted, position: int) -> None:
        self._advance_branch(event, position)

    def _advance_branch(self, event: Any, position: int) -> int:
        world_id, base, _, _ = self._branch(event.originator_id)
        version = base + event.originator_version - 1
        self._heads[event.originator_id] = version
        self._touch_world_position(world_id, position)
        return version

    def _insert_branch(
        self, event: Any, position: int, base: int, forked_from: dict[str, Any] | None
    ) -> None:
        self.conn.execute(
            t.branches.insert().values(
                branch_id=event.originator_id,
                world_id=UUID(event.world_id),
                name=event.name,
                base_version=base,
                head_version=base,
                forked_from=forked_from,
                created_at=event.timestamp,
                created_seq=position,
            )
        )
        self._touch_world_position(UUID(event.world_id), position)

    def _touch_world_position(self, world_id: UUID, position: int) -> None:
        self._world_positions[world_id] = position


Handler = Callable[[ReadModel, Any, int], None]
_HANDLERS: dict[type, Handler] = {}


def _handler(event_type: type) -> Handler:
    """The `project` implementation for `event_type` (found once per type)."""
    if issubclass(event_type, ev.ContentEvent):
        return project_content
    dispatcher: Any = ReadModel.__dict__["project"].dispatcher
    found: Handler = dispatcher.dispatch(event_type)
    return found
