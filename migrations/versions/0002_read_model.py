"""Read model: worlds, members, branches, the four content collections, the change log.

Search vectors weigh names and titles (A) above summaries and descriptions (D).

Content rows are versioned: each row is valid over branch versions `[valid_from, valid_to)`
(`valid_to` null while current), so a branch can be read as of any version without
replaying events. Partial indexes serve the current rows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTENT_COLUMNS = """
    row_id bigserial PRIMARY KEY,
    world_id uuid NOT NULL,
    branch_id uuid NOT NULL,
    id uuid NOT NULL,
    valid_from bigint NOT NULL,
    valid_to bigint,
    created_seq bigint NOT NULL,
"""

CONTENT_TABLES = {
    "rm_locations": """
        name text NOT NULL,
        kind text NOT NULL,
        description text,
        parent_id uuid,
        metadata jsonb NOT NULL DEFAULT '{}',
        search tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('simple', coalesce(name, '')), 'A')
            || setweight(to_tsvector('simple', coalesce(description, '')), 'D')
        ) STORED
    """,
    "rm_elements": """
        kind text NOT NULL,
        name text NOT NULL,
        summary text,
        tags text[] NOT NULL DEFAULT '{}',
        metadata jsonb NOT NULL DEFAULT '{}',
        search tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('simple', coalesce(name, '')), 'A')
            || setweight(to_tsvector('simple', coalesce(summary, '')), 'D')
        ) STORED
    """,
    "rm_timelines": """
        name text NOT NULL,
        description text,
        search tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('simple', coalesce(name, '')), 'A')
            || setweight(to_tsvector('simple', coalesce(description, '')), 'D')
        ) STORED
    """,
    "rm_timeline_events": """
        timeline_id uuid NOT NULL,
        title text NOT NULL,
        description text,
        start jsonb NOT NULL,
        "end" jsonb,
        start_ordinal bigint NOT NULL,
        end_ordinal bigint NOT NULL,
        location_id uuid,
        element_ids uuid[] NOT NULL DEFAULT '{}',
        metadata jsonb NOT NULL DEFAULT '{}',
        search tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('simple', coalesce(title, '')), 'A')
            || setweight(to_tsvector('simple', coalesce(description, '')), 'D')
        ) STORED
    """,
}

EXTRA_INDEXES = [
    "CREATE INDEX rm_locations_parent_idx ON rm_locations (branch_id, parent_id, created_seq)"
    " WHERE valid_to IS NULL",
    "CREATE INDEX rm_locations_kind_idx ON rm_locations (branch_id, kind, created_seq)"
    " WHERE valid_to IS NULL",
    "CREATE INDEX rm_elements_kind_idx ON rm_elements (branch_id, kind, created_seq)"
    " WHERE valid_to IS NULL",
    "CREATE INDEX rm_elements_tags_idx ON rm_elements USING gin (tags) WHERE valid_to IS NULL",
    "CREATE INDEX rm_timeline_events_inworld_idx ON rm_timeline_events"
    " (branch_id, start_ordinal, created_seq) WHERE valid_to IS NULL",
    "CREATE INDEX rm_timeline_events_timeline_idx ON rm_timeline_events"
    " (branch_id, timeline_id, start_ordinal, created_seq) WHERE valid_to IS NULL",
    "CREATE INDEX rm_timeline_events_location_idx ON rm_timeline_events"
    " (branch_id, location_id) WHERE valid_to IS NULL",
    "CREATE INDEX rm_timeline_events_elements_idx ON rm_timeline_events USING gin (element_ids)"
    " WHERE valid_to IS NULL",
]


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE projection_positions (
            name text PRIMARY KEY,
            position bigint NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE rm_worlds (
            id uuid PRIMARY KEY,
            name text NOT NULL,
            description text,
            calendar jsonb NOT NULL,
            default_branch text NOT NULL,
            created_at timestamptz NOT NULL,
            version bigint NOT NULL,
            last_position bigint NOT NULL
        );
        CREATE TABLE rm_members (
            world_id uuid NOT NULL,
            user_id uuid NOT NULL,
            role text NOT NULL,
            PRIMARY KEY (world_id, user_id)
        );
        CREATE INDEX rm_members_user_idx ON rm_members (user_id, world_id);
        CREATE TABLE rm_branches (
            branch_id uuid PRIMARY KEY,
            world_id uuid NOT NULL,
            name text NOT NULL,
            base_version bigint NOT NULL,
            head_version bigint NOT NULL,
            forked_from jsonb,
            created_at timestamptz NOT NULL,
            created_seq bigint NOT NULL,
            UNIQUE (world_id, name)
        );
        CREATE TABLE rm_changes (
            position bigint PRIMARY KEY,
            world_id uuid NOT NULL,
            branch_id uuid,
            stream_version bigint NOT NULL,
            version bigint NOT NULL,
            type text NOT NULL,
            collection text,
            entity_id uuid,
            actor text NOT NULL,
            recorded_at timestamptz NOT NULL,
            command_id text,
            correlation_id text,
            causation_id text,
            hash text NOT NULL,
            prev_hash text NOT NULL,
            data jsonb NOT NULL
        );
        CREATE INDEX rm_changes_branch_idx ON rm_changes (branch_id, version);
        CREATE INDEX rm_changes_entity_idx ON rm_changes (branch_id, entity_id, version);
        CREATE INDEX rm_changes_world_idx ON rm_changes (world_id, position);
        """
    )
    for table, columns in CONTENT_TABLES.items():
        op.execute(f"CREATE TABLE {table} ({CONTENT_COLUMNS} {columns})")
        op.execute(
            f"CREATE UNIQUE INDEX {table}_current_idx ON {table} (branch_id, id)"
            " WHERE valid_to IS NULL"
        )
        op.execute(
            f"CREATE INDEX {table}_order_idx ON {table} (branch_id, created_seq)"
            " WHERE valid_to IS NULL"
        )
        op.execute(f"CREATE INDEX {table}_history_idx ON {table} (branch_id, id, valid_from)")
        # as-of pages walk every version in creation order: this keeps them off a full scan
        op.execute(
            f"CREATE INDEX {table}_versions_idx ON {table} (branch_id, created_seq, valid_from)"
        )
        op.execute(
            f"CREATE INDEX {table}_search_idx ON {table} USING gin (search) WHERE valid_to IS NULL"
        )
        if table != "rm_timelines":
            op.execute(
                f"CREATE INDEX {table}_metadata_idx ON {table} USING gin (metadata jsonb_path_ops)"
                " WHERE valid_to IS NULL"
            )
    for statement in EXTRA_INDEXES:
        op.execute(statement)


def downgrade() -> None:
    for table in CONTENT_TABLES:
        op.execute(f"DROP TABLE {table}")
    op.execute(
        "DROP TABLE rm_changes; DROP TABLE rm_branches; DROP TABLE rm_members;"
        " DROP TABLE rm_worlds; DROP TABLE projection_positions"
    )
