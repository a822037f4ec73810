"""Reads of AI proposals from the read table."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Connection, select

from projections import tables as t
from queries import cursors


def proposals_of(
    conn: Connection,
    world_id: UUID,
    *,
    status: str | None,
    branch: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the world's proposals, oldest first."""
    p = t.proposals
    query = select(p).where(p.c.world_id == world_id)
    if status:
        query = query.where(p.c.status == status)
    if branch:
        query = query.where(p.c.branch == branch)
    if cursor:
        (after,) = cursors.decode("proposals", cursor, 1)
        query = query.where(p.c.created_seq > after)
    rows = conn.execute(query.order_by(p.c.created_seq).limit(limit + 1)).mappings().all()
    page = rows[:limit]
    next_cursor = (
        cursors.encode("proposals", [page[-1]["created_seq"]]) if len(rows) > limit else None
    )
    return [proposal_resource(r) for r in page], next_cursor


def proposal(conn: Connection, world_id: UUID, proposal_id: UUID) -> dict[str, Any] | None:
    p = t.proposals
    row = (
        conn.execute(select(p).where(p.c.world_id == world_id, p.c.id == proposal_id))
        .mappings()
        .first()
    )
    return proposal_resource(row) if row else None


def proposal_resource(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "branch": row["branch"],
        "status": row["status"],
        "params": row["params"],
        "edits": row["edits"],
        "dropped": row["dropped"],
        "flags": row["flags"],
        "provider": row["provider"],
        "model": row["model"],
        "prompt_version": row["prompt_version"],
        "usage": row["usage"],
        "reason": row["reason"],
        "accepted": row["accepted"],
        "requested_by": row["requested_by"],
        "reviewed_by": row["reviewed_by"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "version": row["version"],
    }
