"""Import: recreate a world from its archive, all of it or nothing.

`import_archive` reads the archive a line at a time as it arrives, verifies each line
(`ArchiveVerifier`) and stages it in a temporary table of the import's own transaction,
through one COPY that the server works on while the next lines are verified
(`StagingCopy`).
Only once the last line has verified does it take the event store's write lock (the lock
the recorder takes for every append, which keeps global positions in commit order), copy
the staged events into `pearl_events` with one INSERT ... SELECT, NOTIFY the projector and
commit. A refused archive, a dropped upload or a conflict leaves nothing behind, and other
writers wait only for that final copy, never for the upload.

Without `as_copy` the events keep their ids; each is stored as the application's mapper
stores any event (so this instance's compressor or cipher, if any, applies), which an
export turns back into the very line it came from. If any of the world's streams exists
here already, the import is refused with Conflict. With `as_copy` the events are stored as
`ArchiveCopy` rewrites them: a new world.

Whoever imports a world owns it: unless the archive already makes the importer an owner,
a MemberAdded (or MemberRoleChanged) event recorded by the importer is appended to the
world stream. Exporting an imported world therefore gives back the original archive byte
for byte when the importer was an owner in it, and otherwise that archive plus this event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from eventsourcing.persistence import Mapper, StoredEvent
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import IntegrityError

from commands.archive_codec import stored_events
from commands.archive_copy import ArchiveCopy
from commands.archive_format import ArchiveError, Header, parse_header
from commands.archive_staging import StagingCopy
from commands.archive_tables import EVENTS_TABLE, NOTIFY_CHANNEL, events, staged
from commands.archive_verify import ArchiveVerifier
from commands.errors import Conflict
from commands.provenance import Provenance, recorded_by
from commands.world import World

if TYPE_CHECKING:
    from commands.application import WorldHistory


@dataclass(frozen=True)
class ImportedWorld:
    world: World  # as the import leaves it, the importer's ownership included
    events: int  # events stored
    position: int  # global position of the last of them
    copied_from: UUID | None  # the archive's world id, for a copy


def import_archive(
    history: WorldHistory,
    engine: Engine,
    lines: Iterable[bytes],
    importer: Provenance,
    *,
    as_copy: bool = False,
    new_world_id: UUID | None = None,
    before_commit: Callable[[Connection, ImportedWorld], None] | None = None,
) -> ImportedWorld:
    """Verify and store an archive's world for `importer` (who becomes an owner).

    Raises ArchiveError (naming the line) for a malformed or tampered archive and Conflict
    when the world exists here already; `before_commit` may add to the same transaction.
    """
    numbered = enumerate(lines, start=1)
    first = next(numbered, None)
    if first is None:
        raise ArchiveError(1, "the archive is empty (it starts with a header line)")
    header = parse_header(first[1])
    verifier = ArchiveVerifier(header, history.mapper.transcoder)
    copy = ArchiveCopy(header, new_world_id or uuid4()) if as_copy else None
    mapper = history.mapper
    to_stored = stored_events(mapper)
    with engine.begin() as conn:
        if copy is None:
            _refuse_existing(conn, header)
        staged.create(conn)
        staging = StagingCopy(conn.connection)
        world: Any = None
        try:
            last = 1
            for number, raw in numbered:
                last = number
                verified = verifier.check(number, raw)
                event = verified.event if copy is None else copy.rewrite(verified)
                _stage(staging, to_stored(event))  # before `mutate` can touch the event
                if verified.stream.kind == "world":
                    world = event.mutate(world)
            verifier.finish(last + 1)
            for stored in _ownership(world, importer, mapper):
                _stage(staging, stored)
        except BaseException:
            staging.abort()
            raise
        staging.finish()
        count, position = _publish(conn, header)
        imported = ImportedWorld(world, count, position, header.world_id if copy else None)
        if before_commit is not None:
            before_commit(conn, imported)
    return imported


def _refuse_existing(conn: Connection, header: Header) -> None:
    ids = [entry.stream_id for entry in header.streams]
    found = conn.execute(
        select(events.c.originator_id).where(events.c.originator_id.in_(ids)).limit(1)
    ).scalar()
    if found is not None:
        raise Conflict(_exists(header))


def _exists(header: Header) -> str:
    return (
        f"world {header.world_id} (or one of its branches) already exists here; "
        "import it with as_copy=true to make a copy under new ids"
    )


def _ownership(world: World, importer: Provenance, mapper: Mapper[UUID]) -> list[StoredEvent]:
    if world.role_of(importer.actor) == "owner":
        return []
    with recorded_by(importer):
        world.set_member_role(importer.actor, "owner")
    return [mapper.to_stored_event(event) for event in world.collect_events()]


def _stage(staging: StagingCopy, event: StoredEvent) -> None:
    staging.add(event.originator_id, event.originator_version, event.topic, event.state)


def _publish(conn: Connection, header: Header) -> tuple[int, int]:
    """Copy the staged events into the event store, in order; (count, last position)."""
    conn.execute(text(f"LOCK TABLE {EVENTS_TABLE} IN EXCLUSIVE MODE"))
    try:
        count, position = conn.execute(
            text(
                f"WITH inserted AS ("
                f" INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state)"
                f" SELECT originator_id, originator_version, topic, state"
                f" FROM {staged.name} ORDER BY seq RETURNING id)"
                " SELECT count(*), max(id) FROM inserted"
            )
        ).one()
    except IntegrityError:
        raise Conflict(_exists(header)) from None
    conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
    return int(count), int(position)
