"""Read tables (created by migration 0002) as SQLAlchemy Core tables.

Content rows are valid over branch versions `[valid_from, valid_to)`; `valid_to` is null
while a row is current.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

from commands.branch_events import FIELDS as CONTENT_FIELDS

metadata = MetaData()

READ_MODEL = "read_model"  # the projection that maintains these tables

projection_positions = Table(
    "projection_positions",
    metadata,
    Column("name", Text, primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True)),
)

worlds = Table(
    "rm_worlds",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text),
    Column("description", Text),
    Column("calendar", JSONB),
    Column("default_branch", Text),
    Column("created_at", DateTime(timezone=True)),
    Column("version", BigInteger),
    Column("last_position", BigInteger),
)

members = Table(
    "rm_members",
    metadata,
    Column("world_id", Uuid, primary_key=True),
    Column("user_id", Uuid, primary_key=True),
    Column("role", Text),
)

branches = Table(
    "rm_branches",
    metadata,
    Column("branch_id", Uuid, primary_key=True),
    Column("world_id", Uuid),
    Column("name", Text),
    Column("base_version", BigInteger),
    Column("head_version", BigInteger),
    Column("forked_from", JSONB),
    Column("created_at", DateTime(timezone=True)),
    Column("created_seq", BigInteger),
)

changes = Table(
    "rm_changes",
    metadata,
    Column("position", BigInteger, primary_key=True),
    Column("world_id", Uuid),
    Column("branch_id", Uuid),
    Column("stream_version", BigInteger),
    Column("version", BigInteger),
    Column("type", Text),
    Column("collection", Text),
    Column("entity_id", Uuid),
    Column("actor", Text),
    Column("recorded_at", DateTime(timezone=True)),
    Column("command_id", Text),
    Column("correlation_id", Text),
    Column("causation_id", Text),
    Column("hash", Text),
    Column("prev_hash", Text),
    Column("data", JSONB),
)

proposals = Table(
    "rm_proposals",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("world_id", Uuid),
    Column("branch", Text),
    Column("kind", Text),
    Column("params", JSONB),
    Column("status", Text),
    Column("edits", JSONB),
    Column("dropped", JSONB),
    Column("flags", JSONB),
    Column("provider", Text),
    Column("model", Text),
    Column("prompt_version", Text),
    Column("usage", JSONB),
    Column("reason", Text),
    Column("accepted", JSONB),
    Column("requested_by", Text),
    Column("reviewed_by", Text),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Column("version", BigInteger),
    Column("created_seq", BigInteger),
)


def _content(name: str, *columns: Column) -> Table:  # type: ignore[type-arg]
    return Table(
        name,
        metadata,
        Column("row_id", BigInteger, primary_key=True, autoincrement=True),
        Column("world_id", Uuid, nullable=False),
        Column("branch_id", Uuid, nullable=False),
        Column("id", Uuid, nullable=False),
        Column("valid_from", BigInteger, nullable=False),
        Column("valid_to", BigInteger),
        Column("created_seq", BigInteger, nullable=False),
        *columns,
        Column("search", TSVECTOR),
    )


locations = _content(
    "rm_locations",
    Column("name", Text),
    Column("kind", Text),
    Column("description", Text),
    Column("parent_id", Uuid),
    Column("metadata", JSONB),
)

elements = _content(
    "rm_elements",
    Column("kind", Text),
    Column("name", Text),
    Column("summary", Text),
    Column("tags", ARRAY(Text)),
    Column("metadata", JSONB),
)

timelines = _content(
    "rm_timelines",
    Column("name", Text),
    Column("description", Text),
)

timeline_events = _content(
    "rm_timeline_events",
    Column("timeline_id", Uuid),
    Column("title", Text),
    Column("description", Text),
    Column("start", JSONB),
    Column("end", JSONB),
    Column("start_ordinal", BigInteger),
    Column("end_ordinal", BigInteger),
    Column("location_id", Uuid),
    Column("element_ids", ARRAY(Uuid)),
    Column("metadata", JSONB),
)

CONTENT = {
    "locations": locations,
    "elements": elements,
    "timelines": timelines,
    "timeline_events": timeline_events,
}

FIELDS = CONTENT_FIELDS
