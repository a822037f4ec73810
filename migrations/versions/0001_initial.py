"""Initial schema: the event store (events, snapshots, tracking), users, idempotency keys.

The three `pearl_*` tables are what the eventsourcing-sqlalchemy recorders expect for the
application named "pearl" (tables `<name>_events`, `<name>_snapshots`, `<name>_tracking`); the
recorders run with CREATE_TABLE=false so these migrations own them.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "pearl_events",
        # The global position of the event: the notification id of the notification log.
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("originator_id", sa.Uuid(), nullable=False),
        sa.Column("originator_version", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
    )
    op.create_index(
        "pearl_events_aggregate_idx",
        "pearl_events",
        ["originator_id", "originator_version"],
        unique=True,
    )
    op.create_table(
        "pearl_snapshots",
        sa.Column("originator_id", sa.Uuid(), primary_key=True),
        sa.Column("originator_version", sa.BigInteger(), primary_key=True),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "pearl_tracking",
        sa.Column("application_name", sa.String(32), primary_key=True),
        sa.Column("notification_id", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("email", sa.Text(), nullable=False, unique=True),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.CheckConstraint("email = lower(email)", name="users_email_lower_case"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column(
            "user_id",
            sa.Uuid(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", postgresql.JSONB(), nullable=False),
        sa.Column(
            "headers", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    # Expired keys (older than the idempotency TTL) are deleted by created_at.
    op.create_index("idempotency_keys_created_at_idx", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("idempotency_keys_created_at_idx", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_table("users")
    op.drop_table("pearl_tracking")
    op.drop_table("pearl_snapshots")
    op.drop_index("pearl_events_aggregate_idx", table_name="pearl_events")
    op.drop_table("pearl_events")
