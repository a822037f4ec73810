"""Where a rebuild keeps the read-table indexes it sets aside until it has loaded the rows.

A catch-up that at least doubles the read tables (a projection rebuilt, or first run over a
large import) drops their secondary indexes, loads the rows, and builds the indexes again
(`projections.set_aside`), as PostgreSQL advises for a bulk load: building an index once
from sorted rows is much cheaper than maintaining it row by row. Each dropped index's
definition is recorded here in the same transaction as the DROP, so a process that dies
before it built them again leaves the definitions behind for the next projector to build.

This table is not in the read-model metadata: a rebuild truncates the read tables, and must
never forget an index it set aside.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projection_set_aside_indexes",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column(
            "set_aside_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("projection_set_aside_indexes")
