"""What the import stores, row by row, and how its staging COPY fails: on a real PostgreSQL.

The import stages rows through one COPY running on a thread of its own while it verifies
(commands.archive_staging). Its rows must be exactly those the mapper makes of the verified
events, in archive order; a refusal or a COPY the server rejects, however many chunks were
sent before it, must store nothing and leave the instance able to import.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import psycopg2
import pytest
from sqlalchemy import Engine, create_engine, func, select

from commands import archive_staging
from commands.application import WorldHistory
from commands.archive_export import export_archive
from commands.archive_format import ArchiveError, parse_header, read_lines
from commands.archive_import import ImportedWorld, import_archive
from commands.archive_tables import events
from commands.archive_verify import ArchiveVerifier
from commands.provenance import Provenance
from pearl.migrate import upgrade
from tests.archive_worlds import BuiltWorld, build_world

Instance = tuple[Engine, WorldHistory]


@pytest.fixture(scope="module")
def instances(database_factory: Callable[[str], str]) -> Iterator[dict[str, Instance]]:
    """Two migrated databases: `source` (worlds built on it) and `target` (imports)."""
    made: dict[str, Instance] = {}
    for name in ("source", "target"):
        url = database_factory(f"pearl_import_rows_{name}")
        upgrade(url)
        made[name] = (create_engine(url), WorldHistory.on_database(url))
    yield made
    for engine, history in made.values():
        history.close()
        engine.dispose()


@pytest.fixture(scope="module")
def world(instances: dict[str, Instance]) -> tuple[BuiltWorld, bytes]:
    engine, history = instances["source"]
    built = build_world(history, "Rows")
    return built, b"".join(export_archive(engine, history.mapper, built.world_id))


def load(instance: Instance, archive: bytes, importer: str) -> ImportedWorld:
    engine, history = instance
    lines = read_lines(io.BytesIO(archive))
    return import_archive(history, engine, lines, Provenance(actor=importer))


def stored_rows(engine: Engine, first: int, last: int) -> list[tuple[Any, ...]]:
    query = (
        select(events.c.originator_id, events.c.originator_version, events.c.topic, events.c.state)
        .where(events.c.id.between(first, last))
        .order_by(events.c.id)
    )
    with engine.connect() as conn:
        return [(row[0], row[1], row[2], bytes(row[3])) for row in conn.execute(query)]


def event_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few rows, so a small archive goes out in many and fills the queue."""
    monkeypatch.setattr(archive_staging, "CHUNK_BYTES", 2048)
    monkeypatch.setattr(archive_staging, "DEPTH", 2)


def fresh_world(instances: dict[str, Instance]) -> tuple[BuiltWorld, bytes]:
    """Another world built on the source, and its archive."""
    engine, history = instances["source"]
    built = build_world(history, f"Rows {uuid4().hex[:6]}")
    return built, b"".join(export_archive(engine, history.mapper, built.world_id))


class TestStoredRows:
    def test_the_rows_are_the_mappers_stored_events_of_the_verified_lines_in_order(
        self,
        instances: dict[str, Instance],
        world: tuple[BuiltWorld, bytes],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        small_chunks(monkeypatch)
        built, archive = world
        engine, history = instances["target"]
        importer = str(uuid4())  # not an owner in the archive: one more event is appended
        imported = load(instances["target"], archive, importer)

        lines = archive.splitlines(keepends=True)
        verifier = ArchiveVerifier(parse_header(lines[0]), history.mapper.transcoder)
        expected = [
            history.mapper.to_stored_event(verifier.check(number, raw).event)
            for number, raw in enumerate(lines[1:], start=2)
        ]
        rows = stored_rows(engine, imported.position - imported.events + 1, imported.position)

        assert imported.events == len(expected) + 1 == len(rows)
        assert len(archive) > 10 * archive_staging.CHUNK_BYTES  # many chunks were sent
        assert rows[:-1] == [
            (e.originator_id, e.originator_version, e.topic, e.state) for e in expected
        ]
        assert rows[-1][:2] == (built.world_id, imported.world.version)
        assert imported.world.role_of(importer) == "owner"


class TestStagingFailures:
    def test_a_refusal_after_many_chunks_stores_nothing_and_the_import_then_works(
        self, instances: dict[str, Instance], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        small_chunks(monkeypatch)
        built, archive = fresh_world(instances)
        engine, _ = instances["target"]
        lines = archive.splitlines(keepends=True)
        last = lines[-1].replace(b'"hash":"', b'"hash":"0', 1).replace(b'","prev_hash"', b'"', 1)
        broken = b"".join([*lines[:-1], last])
        before = event_count(engine)

        with pytest.raises(ArchiveError) as refused:
            load(instances["target"], broken, built.owner)

        assert refused.value.line == len(lines)
        assert event_count(engine) == before
        imported = load(instances["target"], archive, built.owner)
        assert imported.events == len(lines) - 1
        assert event_count(engine) == before + imported.events

    def test_a_copy_the_server_rejects_raises_stores_nothing_and_the_import_then_works(
        self, instances: dict[str, Instance], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        small_chunks(monkeypatch)
        built, archive = fresh_world(instances)
        engine, _ = instances["target"]
        before = event_count(engine)
        sent: list[str] = []

        def bad_after_some_rows(topic: str) -> str:
            sent.append(topic)
            return topic if len(sent) < 20 else "a\tb"  # a column too many: the server refuses

        monkeypatch.setattr(archive_staging, "_copy_text", bad_after_some_rows)
        with pytest.raises(psycopg2.DataError):
            load(instances["target"], archive, built.owner)
        assert event_count(engine) == before

        monkeypatch.undo()
        imported = load(instances["target"], archive, built.owner)
        assert event_count(engine) == before + imported.events
