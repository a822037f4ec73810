"""Read model of AI proposals.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE rm_proposals (
            id uuid PRIMARY KEY,
            world_id uuid NOT NULL,
            branch text NOT NULL,
            kind text NOT NULL,
            params jsonb NOT NULL,
            status text NOT NULL,
            edits jsonb NOT NULL DEFAULT '[]',
            dropped jsonb NOT NULL DEFAULT '[]',
            flags jsonb NOT NULL DEFAULT '[]',
            provider text,
            model text,
            prompt_version text,
            usage jsonb NOT NULL DEFAULT '{}',
            reason text,
            accepted jsonb,
            requested_by text NOT NULL,
            reviewed_by text,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            version bigint NOT NULL,
            created_seq bigint NOT NULL
        );
        CREATE INDEX rm_proposals_world_idx ON rm_proposals (world_id, created_seq);
        CREATE INDEX rm_proposals_status_idx ON rm_proposals (world_id, status, created_seq);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE rm_proposals")
