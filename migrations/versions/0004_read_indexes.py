"""Read indexes for in-world ranges of timeline events, current and as of a version.

A range read (`from`/`to`) selects events whose span `[start, end]` overlaps the range;
ordered by start, an index scan had to begin at the start of time to find the long events
that began early and still overlap. No event of a branch spans more than its longest one,
so `start_ordinal >= from - longest` bounds the scan: `rm_timeline_events_span_idx` answers
`longest` in one probe (over every version of the branch's events, so the bound holds as of
any version too). As-of reads see old row versions, which the partial (current-row) indexes
leave out: `rm_timeline_events_inworld_versions_idx` serves them in in-world order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX rm_timeline_events_span_idx ON rm_timeline_events"
        " (branch_id, (end_ordinal - start_ordinal))"
    )
    op.execute(
        "CREATE INDEX rm_timeline_events_inworld_versions_idx ON rm_timeline_events"
        " (branch_id, start_ordinal, created_seq)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX rm_timeline_events_inworld_versions_idx")
    op.execute("DROP INDEX rm_timeline_events_span_idx")
