"""Export: a world's archive, line by line, read from the event store in pages.

The whole export reads one REPEATABLE READ snapshot, so an archive is a consistent cut of
the world even while writers append: the header's counts and head hashes and the events
after it describe the same moment. Events are read `page_size` at a time, per stream, in
version order; nothing holds more than a page. The state is decrypted and decompressed
with the application's mapper when it has a cipher or compressor, and re-encoded
canonically (see `commands.archive_format`); hashes are copied, never recomputed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper
from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Engine, func, select

from commands.archive_format import Header, StreamEntry, event_line, header_line
from commands.archive_tables import events
from commands.errors import NotFound
from commands.world import World

PAGE_SIZE = 200
BRANCH_CREATED = get_topic(World.BranchCreated)


def export_archive(
    engine: Engine, mapper: Mapper[UUID], world_id: UUID, page_size: int = PAGE_SIZE
) -> Iterator[bytes]:
    """The archive of `world_id`: the header line, then chunks of event lines.

    Raises NotFound (before yielding anything) when the world has no events.
    """
    with engine.connect() as conn:
        snapshot = conn.execution_options(isolation_level="REPEATABLE READ")
        with snapshot.begin():
            header = _header(snapshot, mapper, world_id)
            yield header_line(header)
            for stream in header.streams:
                after = 0
                while True:
                    rows = snapshot.execute(
                        select(events.c.originator_version, events.c.topic, events.c.state)
                        .where(
                            events.c.originator_id == stream.stream_id,
                            events.c.originator_version > after,
                        )
                        .order_by(events.c.originator_version)
                        .limit(page_size)
                    ).all()
                    if not rows:
                        break
                    yield b"".join(
                        event_line(stream.stream_id, row[0], row[1], plain_state(mapper, row[2]))
                        for row in rows
                    )
                    after = rows[-1][0]


def _header(conn: Connection, mapper: Mapper[UUID], world_id: UUID) -> Header:
    world = _entry(conn, mapper, world_id, "world", None)
    if world is None:
        raise NotFound(f"world {world_id} does not exist")
    registrations = conn.execute(
        select(events.c.state)
        .where(events.c.originator_id == world_id, events.c.topic == BRANCH_CREATED)
        .order_by(events.c.originator_version)
    ).scalars()
    branches: list[StreamEntry] = []
    for state in registrations:
        registered = plain_state(mapper, state)
        stream_id = UUID(registered["branch_id"])
        entry = _entry(conn, mapper, stream_id, "branch", registered["name"])
        # A registered branch always has its stream (both are saved together); were one
        # missing, the header says so with 0 events and an import refuses the archive.
        branches.append(entry or StreamEntry(stream_id, "branch", registered["name"], 0, ""))
    return Header(world_id=world_id, streams=(world, *branches))


def _entry(
    conn: Connection, mapper: Mapper[UUID], stream_id: UUID, kind: str, name: str | None
) -> StreamEntry | None:
    count = conn.execute(
        select(func.count()).select_from(events).where(events.c.originator_id == stream_id)
    ).scalar_one()
    if not count:
        return None
    last = conn.execute(
        select(events.c.state)
        .where(events.c.originator_id == stream_id)
        .order_by(events.c.originator_version.desc())
        .limit(1)
    ).scalar_one()
    return StreamEntry(stream_id, kind, name, int(count), plain_state(mapper, last)["hash"])


def plain_state(mapper: Mapper[UUID], stored: bytes) -> dict[str, Any]:
    """A stored state as the transcoder wrote it: decrypted, decompressed, parsed."""
    if mapper.cipher:
        stored = mapper.cipher.decrypt(stored)
    if mapper.compressor:
        stored = mapper.compressor.decompress(stored)
    state: dict[str, Any] = json.loads(stored)
    return state
