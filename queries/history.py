"""A branch's change log and one entity's history, from `rm_changes` and the versioned rows.

Both read the branch's lineage: on a fork at version N, the parent's changes up to N, then
the fork's own. Pages are keyset-paginated by branch version, which is unique in a lineage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Select, select, tuple_

from projections import tables as t
from queries import cursors
from queries.content import resource
from queries.lineage import Segment, covering, lineage

Row = dict[str, Any]
REMOVED = ("LocationRemoved", "ElementRemoved", "TimelineRemoved", "TimelineEventRemoved")


@dataclass(frozen=True)
class ChangeFilters:
    """What the change log may be narrowed by; None means 'not asked for'."""

    actor: str | None = None
    entity_id: UUID | None = None
    type: str | None = None
    since: datetime | None = None  # recorded at or after
    until: datetime | None = None  # recorded before
    after_version: int | None = None
    as_of: int | None = None  # up to and including this version


def change_log(
    conn: Connection,
    world_id: UUID,
    branch: str,
    filters: ChangeFilters,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Row], str | None]:
    """One page of the branch's changes in version order."""
    segments = lineage(conn, world_id, branch)
    c = t.changes.c
    query = _lineage_changes(segments, filters.as_of).where(*_conditions(filters))
    if cursor:
        query = query.where(c.version > _version_from("history", cursor))
    rows = conn.execute(query.order_by(c.version).limit(limit + 1)).mappings().all()
    page = rows[:limit]
    next_cursor = cursors.encode("history", [page[-1]["version"]]) if len(rows) > limit else None
    names = _branch_names(segments)
    return [change_entry(r, names) for r in page], next_cursor


def entity_history(
    conn: Connection,
    world_id: UUID,
    branch: str,
    collection: str,
    entity_id: UUID,
    *,
    limit: int,
    cursor: str | None,
    as_of: int | None = None,
) -> tuple[list[Row], str | None] | None:
    """One page of an entity's changes with field-level before/after.

    None when the lineage holds no change of it (up to `as_of`): it never existed there.
    """
    segments = lineage(conn, world_id, branch)
    c = t.changes.c
    changes_of = _lineage_changes(segments, as_of).where(
        c.entity_id == entity_id, c.collection == collection
    )
    if conn.execute(changes_of.limit(1)).first() is None:
        return None
    query = changes_of
    if cursor:
        query = query.where(c.version > _version_from("entity-history", cursor))
    rows = conn.execute(query.order_by(c.version).limit(limit + 1)).mappings().all()
    page = rows[:limit]
    next_cursor = (
        cursors.encode("entity-history", [page[-1]["version"]]) if len(rows) > limit else None
    )
    if not page:
        return [], None
    previous = (
        conn.execute(
            changes_of.where(c.version < page[0]["version"]).order_by(c.version.desc()).limit(1)
        )
        .mappings()
        .first()
    )
    written = [previous, *page] if previous else list(page)
    states = _states(conn, collection, entity_id, written)
    before = _state_after(previous, states) if previous else None
    names = _branch_names(segments)
    entries = []
    for row in page:
        after = _state_after(row, states)
        entries.append({**_provenance(row, names), "changes": field_changes(before, after)})
        before = after
    return entries, next_cursor


def field_changes(before: Row | None, after: Row | None) -> dict[str, dict[str, Any]]:
    """`{field: {"before", "after"}}` for each field that differs (a missing side is null).

    A creation lists every field it set, a removal every field that had a value.
    """
    names = [k for k in (after or before or {}) if k not in ("id", "version")]
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        old = before.get(name) if before else None
        new = after.get(name) if after else None
        if old != new:
            out[name] = {"before": old, "after": new}
    return out


def change_entry(row: Any, names: dict[UUID, str]) -> Row:
    """A change-log row as the API shows it."""
    return {
        **_provenance(row, names),
        "collection": _segment(row["collection"]),
        "entity_id": str(row["entity_id"]) if row["entity_id"] else None,
        "hash": row["hash"],
        "prev_hash": row["prev_hash"],
        "data": row["data"],
    }


# -- helpers -----------------------------------------------------------------------------


def _lineage_changes(segments: list[Segment], as_of: int | None) -> Select[Any]:
    c = t.changes.c
    query = select(t.changes).where(covering(c.branch_id, c.version, segments))
    return query.where(c.version <= as_of) if as_of is not None else query


def _conditions(f: ChangeFilters) -> list[Any]:
    c = t.changes.c
    conditions: list[Any] = []
    if f.actor is not None:
        conditions.append(c.actor == f.actor)
    if f.entity_id is not None:
        conditions.append(c.entity_id == f.entity_id)
    if f.type is not None:
        conditions.append(c.type == f.type)
    if f.since is not None:
        conditions.append(c.recorded_at >= f.since)
    if f.until is not None:
        conditions.append(c.recorded_at < f.until)
    if f.after_version is not None:
        conditions.append(c.version > f.after_version)
    return conditions


def _version_from(kind: str, cursor: str) -> int:
    (version,) = cursors.decode(kind, cursor, 1)
    if not isinstance(version, int) or not -1 <= version < 2**63:
        raise cursors.BadCursor("the cursor does not belong to this list")
    return version


def _states(
    conn: Connection,
    collection: str,
    entity_id: UUID,
    changes: list[Any],
) -> dict[tuple[UUID, int], Row]:
    """The entity's rows written by `changes`, keyed by (branch id, version)."""
    table = t.CONTENT[collection]
    keys = [(r["branch_id"], r["version"]) for r in changes if r["type"] not in REMOVED]
    if not keys:
        return {}
    rows = conn.execute(
        select(table).where(
            table.c.id == entity_id, tuple_(table.c.branch_id, table.c.valid_from).in_(keys)
        )
    ).mappings()
    return {(r["branch_id"], r["valid_from"]): resource(collection, r) for r in rows}


def _state_after(change: Any, states: dict[tuple[UUID, int], Row]) -> Row | None:
    """The entity as a change left it (None after a removal)."""
    if change["type"] in REMOVED:
        return None
    return states.get((change["branch_id"], change["version"]))


def _provenance(row: Any, names: dict[UUID, str]) -> Row:
    return {
        "version": row["version"],
        "position": row["position"],
        "type": row["type"],
        "branch": names.get(row["branch_id"]),
        "actor": row["actor"],
        "recorded_at": row["recorded_at"].isoformat(),
        "command_id": row["command_id"],
        "correlation_id": row["correlation_id"],
        "causation_id": row["causation_id"],
    }


def _branch_names(segments: list[Segment]) -> dict[UUID, str]:
    return {s.branch_id: s.name for s in segments}


def _segment(collection: str | None) -> str | None:
    """A collection as it appears in URLs (`timeline-events`)."""
    return collection.replace("_", "-") if collection else None
