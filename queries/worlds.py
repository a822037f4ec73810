"""Reads of worlds and branches from the read tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, select

from projections import tables as t
from queries import cursors


def worlds_of(
    conn: Connection, user_id: UUID, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Worlds the user has a role in, oldest first, with the user's role."""
    w, m = t.worlds, t.members
    query = (
        select(w, m.c.role)
        .join(m, m.c.world_id == w.c.id)
        .where(m.c.user_id == user_id)
        .order_by(w.c.created_at, w.c.id)
    )
    if cursor:
        raw_created, raw_id = cursors.decode("worlds", cursor, 2, (str, str))
        try:
            created_at, world_id = datetime.fromisoformat(raw_created), UUID(raw_id)
        except ValueError:
            raise cursors.BadCursor("the cursor does not belong to this list") from None
        query = query.where(
            (w.c.created_at > created_at) | ((w.c.created_at == created_at) & (w.c.id > world_id))
        )
    rows = conn.execute(query.limit(limit + 1)).mappings().all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = cursors.encode("worlds", [last["created_at"].isoformat(), str(last["id"])])
    return [{**world_resource(r), "role": r["role"]} for r in page], next_cursor


def world_resource(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "description": row["description"],
        "calendar": row["calendar"],
        "default_branch": row["default_branch"],
        "created_at": row["created_at"].isoformat(),
        "version": row["version"],
    }


def world_position(conn: Connection, world_id: UUID) -> int | None:
    """Position of the last projected event of the world (None before its first)."""
    found = conn.execute(select(t.worlds.c.last_position).where(t.worlds.c.id == world_id)).scalar()
    return int(found) if found is not None else None


def branches_of(conn: Connection, world_id: UUID) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(t.branches)
        .where(t.branches.c.world_id == world_id)
        .order_by(t.branches.c.created_seq)
    ).mappings()
    return [branch_resource(r) for r in rows]


def branch(conn: Connection, world_id: UUID, name: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            select(t.branches).where(t.branches.c.world_id == world_id, t.branches.c.name == name)
        )
        .mappings()
        .first()
    )
    return branch_resource(row) if row else None


def branch_resource(row: Any) -> dict[str, Any]:
    return {
        "name": row["name"],
        "head_version": row["head_version"],
        "forked_from": row["forked_from"],
        "created_at": row["created_at"].isoformat(),
        "branch_id": str(row["branch_id"]),
    }
