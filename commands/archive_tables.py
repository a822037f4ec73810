"""The event store's table as the archive reads and writes it, and the import's staging table.

`pearl_events` belongs to migration 0001 (the eventsourcing-sqlalchemy recorder's table for
the application named "pearl"); `id` is the global position, which archives leave out.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Identity, LargeBinary, MetaData, Table, Text, Uuid

metadata = MetaData()

EVENTS_TABLE = "pearl_events"
NOTIFY_CHANNEL = "pearl_events"  # the recorder's channel: the projector LISTENs on it

events = Table(
    EVENTS_TABLE,
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("originator_id", Uuid, nullable=False),
    Column("originator_version", BigInteger, nullable=False),
    Column("topic", Text, nullable=False),
    Column("state", LargeBinary, nullable=False),
)

# Imported events wait here, in archive order, until the whole archive has verified; the
# table lives in the import's own transaction and is dropped when it ends.
staged = Table(
    "archive_import",
    MetaData(),
    Column("seq", BigInteger, Identity(), primary_key=True),
    Column("originator_id", Uuid, nullable=False),
    Column("originator_version", BigInteger, nullable=False),
    Column("topic", Text, nullable=False),
    Column("state", LargeBinary, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
