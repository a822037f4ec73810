"""A branch's lineage: its own stream, then each ancestor up to the version it was forked at.

A fork at version N of its parent reads the parent's rows and changes for versions <= N, and
its own for versions > N. The lineage lists `(branch_id, first_version, last_version)` ranges,
newest first; `last_version` is None for the branch itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, or_, select

from projections import tables as t


@dataclass(frozen=True)
class Segment:
    branch_id: UUID
    name: str
    after_version: int  # versions > after_version come from this branch ...
    upto_version: int | None  # ... up to this one (None: its head)


def lineage(conn: Connection, world_id: UUID, name: str) -> list[Segment]:
    """The segments that make up the branch's history, the branch itself first."""
    rows = {
        row.name: row
        for row in conn.execute(
            select(t.branches.c.branch_id, t.branches.c.name, t.branches.c.forked_from).where(
                t.branches.c.world_id == world_id
            )
        )
    }
    segments: list[Segment] = []
    upto: int | None = None
    current: str | None = name
    while current is not None:
        row = rows[current]
        forked = row.forked_from
        after = int(forked["version"]) if forked else -1
        segments.append(Segment(row.branch_id, row.name, after, upto))
        # a fork before the parent's own fork point reads the grandparent only up to there
        upto = (after if upto is None else min(upto, after)) if forked else None
        current = forked["branch"] if forked else None
    return segments


def covering(column_branch: Any, column_version: Any, segments: list[Segment]) -> Any:
    """SQL condition: a (branch_id, version) pair lies in one of the lineage's segments."""
    parts = []
    for segment in segments:
        condition = and_(column_branch == segment.branch_id, column_version > segment.after_version)
        if segment.upto_version is not None:
            condition = and_(condition, column_version <= segment.upto_version)
        parts.append(condition)
    return or_(*parts)
