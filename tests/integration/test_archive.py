"""Export and import on a real PostgreSQL: round trip, conflicts, copies, refusals, memory.

Two migrated databases play two instances: `source`, where worlds are built through the
write side, and `target`, which starts empty. An archive is exported from one, imported
into the other and exported again; a refused import must leave `pearl_events` exactly as
it was; export and import must stream, their Python memory growing far less than the
archive they handle.
"""

from __future__ import annotations

import io
import json
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, create_engine, func, select

from api import create_app
from api.tokens import issue
from commands.application import WorldHistory
from commands.archive_export import export_archive
from commands.archive_format import MEDIA_TYPE, ArchiveError, parse_header, read_lines
from commands.archive_import import ImportedWorld, import_archive
from commands.archive_tables import events
from commands.archive_verify import ArchiveVerifier
from commands.branch import Branch
from commands.chain import GENESIS_HASH, first_broken_link
from commands.errors import Conflict, NotFound
from commands.messages import AddEntity
from commands.provenance import Provenance, recorded_by
from commands.world import World, branch_id
from pearl.config import Config
from pearl.migrate import upgrade
from projections import tables as t
from projections.runner import ProjectionRunner
from tests.archive_worlds import BRANCHES, BuiltWorld, build_world

BIG_WORLD_EVENTS = 20_000


@dataclass
class Instance:
    """One database with its write side, as one instance of the service sees it."""

    url: str
    engine: Engine
    history: WorldHistory

    def export(self, world_id: UUID) -> bytes:
        return b"".join(export_archive(self.engine, self.history.mapper, world_id))

    def load(self, archive: bytes, importer: str, **options: Any) -> ImportedWorld:
        lines = read_lines(io.BytesIO(archive))
        return import_archive(
            self.history, self.engine, lines, Provenance(actor=importer), **options
        )

    def event_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())

    def project(self) -> None:
        ProjectionRunner(self.engine, self.history).catch_up()

    def read_model(self, world_id: UUID) -> dict[str, list[str]]:
        """The world's read rows by table, ids of the world and its branches left out."""
        with self.engine.connect() as conn:
            found = {
                "world": [
                    repr(tuple(row))
                    for row in conn.execute(
                        select(
                            t.worlds.c.name,
                            t.worlds.c.description,
                            t.worlds.c.calendar,
                            t.worlds.c.created_at,
                            t.worlds.c.version,
                        ).where(t.worlds.c.id == world_id)
                    )
                ],
                "members": _rows(
                    conn.execute(
                        select(t.members.c.user_id, t.members.c.role).where(
                            t.members.c.world_id == world_id
                        )
                    )
                ),
                "branches": _rows(
                    conn.execute(
                        select(
                            t.branches.c.name,
                            t.branches.c.base_version,
                            t.branches.c.head_version,
                            t.branches.c.forked_from,
                        ).where(t.branches.c.world_id == world_id)
                    )
                ),
            }
            for collection, table in t.CONTENT.items():
                columns = [table.c[name] for name in t.FIELDS[collection]]
                found[collection] = _rows(
                    conn.execute(
                        select(
                            t.branches.c.name,
                            table.c.id,
                            table.c.valid_from,
                            table.c.valid_to,
                            *columns,
                        )
                        .join_from(table, t.branches, table.c.branch_id == t.branches.c.branch_id)
                        .where(table.c.world_id == world_id)
                    )
                )
        return found


def _rows(result: Any) -> list[str]:
    return sorted(repr(tuple(row)) for row in result)


def instance(database_factory: Callable[[str], str], prefix: str) -> Iterator[Instance]:
    url = database_factory(prefix)
    upgrade(url)
    engine = create_engine(url)
    history = WorldHistory.on_database(url)
    yield Instance(url, engine, history)
    history.close()
    engine.dispose()


@pytest.fixture(scope="module")
def source(database_factory: Callable[[str], str]) -> Iterator[Instance]:
    """The instance the worlds are built on."""
    yield from instance(database_factory, "pearl_archive_source")


@pytest.fixture(scope="module")
def target(database_factory: Callable[[str], str]) -> Iterator[Instance]:
    """A fresh instance that archives are imported into."""
    yield from instance(database_factory, "pearl_archive_target")


@pytest.fixture(scope="module")
def built(source: Instance) -> BuiltWorld:
    """A world with every kind of event and three branches, on the source."""
    return build_world(source.history)


@pytest.fixture(scope="module")
def archive(source: Instance, built: BuiltWorld) -> bytes:
    """The built world's archive, as the source exports it."""
    return source.export(built.world_id)


@pytest.fixture(scope="module")
def imported(target: Instance, built: BuiltWorld, archive: bytes) -> ImportedWorld:
    """The archive imported into the target by the world's owner."""
    return target.load(archive, built.owner)


@pytest.fixture(scope="module")
def copied(source: Instance, built: BuiltWorld, archive: bytes) -> ImportedWorld:
    """The archive imported as a copy into the instance that holds the original."""
    return source.load(archive, built.owner, as_copy=True)


@pytest.fixture(scope="module")
def untouched(source: Instance) -> tuple[BuiltWorld, bytes]:
    """Another world and its archive, never imported into the target."""
    other = build_world(source.history, "Refusals")
    return other, source.export(other.world_id)


def lines_of(archive: bytes) -> list[bytes]:
    return archive.splitlines(keepends=True)


def line_of(archive: bytes, number: int) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(lines_of(archive)[number - 1])
    return value


def with_line(archive: bytes, number: int, line: bytes) -> bytes:
    lines = lines_of(archive)
    lines[number - 1] = line
    return b"".join(lines)


class TestRoundTrip:
    def test_export_import_export_gives_the_same_bytes_hashes_included(
        self, target: Instance, built: BuiltWorld, archive: bytes, imported: ImportedWorld
    ) -> None:
        again = target.export(built.world_id)
        assert again == archive
        assert imported.events == len(lines_of(archive)) - 1
        assert imported.copied_from is None

    def test_the_imported_world_has_the_same_state_on_the_new_instance(
        self, source: Instance, target: Instance, built: BuiltWorld, imported: ImportedWorld
    ) -> None:
        original = source.history.world(built.world_id)
        copy = target.history.world(built.world_id)
        assert copy.members == original.members
        assert copy.branches == original.branches
        assert imported.world.version == original.version
        for name in BRANCHES:
            here = target.history.branch(copy, name)
            assert here.entities == source.history.branch(original, name).entities
            assert here.head_version == source.history.branch(original, name).head_version

    def test_the_imported_world_reads_like_the_original_once_projected(
        self, source: Instance, target: Instance, built: BuiltWorld, imported: ImportedWorld
    ) -> None:
        source.project()
        target.project()
        assert target.read_model(built.world_id) == source.read_model(built.world_id)
        assert target.read_model(built.world_id)["elements"]


class TestSnapshot:
    def test_an_export_is_one_moment_of_the_world_even_while_it_changes(
        self, source: Instance
    ) -> None:
        busy = build_world(source.history, "Busy")
        chunks = export_archive(source.engine, source.history.mapper, busy.world_id, page_size=3)
        started = next(chunks) + next(chunks)  # the header, then the first page
        added = AddEntity(
            busy.world_id, "main", "elements", str(uuid4()), {"kind": "k", "name": "Late"}
        )
        source.history.handle(added, Provenance(actor=busy.owner))
        archive = started + b"".join(chunks)
        lines = lines_of(archive)
        verifier = ArchiveVerifier(parse_header(lines[0]), source.history.mapper.transcoder)
        for number, raw in enumerate(lines[1:], start=2):
            verifier.check(number, raw)
        verifier.finish(len(lines) + 1)
        assert b"Late" not in archive
        assert b"Late" in source.export(busy.world_id)


class TestConflict:
    def test_importing_a_world_that_exists_here_is_refused_and_adds_nothing(
        self, target: Instance, built: BuiltWorld, archive: bytes, imported: ImportedWorld
    ) -> None:
        before = target.event_count()
        with pytest.raises(Conflict, match=f"world {built.world_id}"):
            target.load(archive, built.owner)
        assert target.event_count() == before

    def test_so_is_importing_it_back_into_the_instance_it_came_from(
        self, source: Instance, built: BuiltWorld, archive: bytes
    ) -> None:
        before = source.event_count()
        with pytest.raises(Conflict):
            source.load(archive, str(uuid4()))
        assert source.event_count() == before

    def test_a_conflict_found_only_when_publishing_adds_nothing_either(
        self, source: Instance, built: BuiltWorld, archive: bytes
    ) -> None:
        # A copy given the original's id passes every check, then collides on insert.
        before = source.event_count()
        with pytest.raises(Conflict):
            source.load(archive, built.owner, as_copy=True, new_world_id=built.world_id)
        assert source.event_count() == before


class TestOwnership:
    def test_an_importer_who_is_no_owner_in_the_archive_becomes_one_by_a_world_event(
        self, source: Instance, target: Instance
    ) -> None:
        other = build_world(source.history, "Other")
        archive = source.export(other.world_id)
        importer = str(uuid4())
        done = target.load(archive, importer)
        assert done.world.role_of(importer) == "owner"
        again = lines_of(target.export(other.world_id))
        original = lines_of(archive)
        header = json.loads(again[0])
        world_events = header["streams"][0]["events"]
        assert world_events == json.loads(original[0])["streams"][0]["events"] + 1
        added = json.loads(again[world_events])
        assert added["topic"] == "commands.world:World.MemberAdded"
        assert added["state"]["user_id"] == importer
        assert added["state"]["role"] == "owner"
        assert added["state"]["meta"]["actor"] == importer
        assert again[1:world_events] == original[1:world_events]
        assert again[world_events + 1 :] == original[world_events:]


class TestCopy:
    def test_the_copy_gets_new_ids_and_records_whence_it_came(
        self, source: Instance, built: BuiltWorld, copied: ImportedWorld, archive: bytes
    ) -> None:
        new_id = copied.world.id
        assert new_id != built.world_id
        assert copied.copied_from == built.world_id
        assert set(copied.world.branches) == set(BRANCHES)
        for name, entry in copied.world.branches.items():
            assert entry["branch_id"] == str(branch_id(new_id, name))
        first: Any = next(iter(source.history.events.get(new_id)))
        assert first.meta["copied_from"] == {
            "world_id": str(built.world_id),
            "stream_id": str(built.world_id),
            "head_hash": line_of(archive, 1)["streams"][0]["head_hash"],
        }

    def test_every_stream_of_the_copy_is_a_valid_chain_of_its_own(
        self, source: Instance, copied: ImportedWorld, archive: bytes
    ) -> None:
        app, world_id = source.history, copied.world.id
        streams = [world_id, *(branch_id(world_id, name) for name in BRANCHES)]
        old_hashes = {line_of(archive, n)["hash"] for n in range(2, len(lines_of(archive)) + 1)}
        for stream_id in streams:
            stored: list[Any] = list(app.events.get(stream_id))
            first = stored[0]
            start = (
                app.hash_at(UUID(first.parent_branch_id), first.at_version)
                if hasattr(first, "parent_branch_id")
                else GENESIS_HASH
            )
            assert first.prev_hash == start
            assert first_broken_link(stored, expected_prev=start) is None
            assert not old_hashes & {e.hash for e in stored}

    def test_the_copy_exports_an_archive_that_verifies_on_import(
        self, source: Instance, target: Instance, copied: ImportedWorld
    ) -> None:
        world_id = copied.world.id
        again = target.load(source.export(world_id), str(uuid4()))
        assert again.world.id == world_id
        assert again.events == copied.events + 1  # and its importer's ownership

    def test_the_copy_reads_like_the_original_once_projected(
        self, source: Instance, built: BuiltWorld, copied: ImportedWorld
    ) -> None:
        source.project()
        assert source.read_model(copied.world.id) == source.read_model(built.world_id)


class TestRefusal:
    """A world never imported into the target, so only the archive's flaws can refuse it."""

    def refused(self, target: Instance, archive: bytes, world_id: UUID) -> ArchiveError:
        before = target.event_count()
        with pytest.raises(ArchiveError) as caught:
            target.load(archive, str(uuid4()))
        assert target.event_count() == before
        with pytest.raises(NotFound):
            target.history.world(world_id)
        return caught.value

    def test_a_name_changed_inside_a_state(
        self, target: Instance, untouched: tuple[BuiltWorld, bytes]
    ) -> None:
        world, archive = untouched
        number = next(
            n
            for n, raw in enumerate(lines_of(archive), start=1)
            if b"LocationAdded" in raw and b"Aerth" in raw
        )
        value = line_of(archive, number)
        value["state"]["fields"]["name"] = "Mars"
        tampered = with_line(archive, number, _line(value))
        error = self.refused(target, tampered, world.world_id)
        assert error.line == number
        assert "hash does not match" in error.detail

    def test_a_bad_hash(self, target: Instance, untouched: tuple[BuiltWorld, bytes]) -> None:
        world, archive = untouched
        value = line_of(archive, 30)
        value["hash"] = value["state"]["hash"] = "a" * 64
        error = self.refused(target, with_line(archive, 30, _line(value)), world.world_id)
        assert error.line == 30

    def test_a_line_cut_short(self, target: Instance, untouched: tuple[BuiltWorld, bytes]) -> None:
        world, archive = untouched
        error = self.refused(target, archive[:-40], world.world_id)
        assert error.line == len(lines_of(archive))
        assert "not valid JSON" in error.detail

    def test_an_archive_cut_between_lines(
        self, target: Instance, untouched: tuple[BuiltWorld, bytes]
    ) -> None:
        world, archive = untouched
        lines = lines_of(archive)
        error = self.refused(target, b"".join(lines[:-3]), world.world_id)
        assert error.line == len(lines) - 2
        assert "ends early" in error.detail

    def test_events_in_the_wrong_order(
        self, target: Instance, untouched: tuple[BuiltWorld, bytes]
    ) -> None:
        world, archive = untouched
        lines = lines_of(archive)
        lines[20], lines[21] = lines[21], lines[20]
        error = self.refused(target, b"".join(lines), world.world_id)
        assert error.line == 21
        assert "expected version" in error.detail

    def test_the_untouched_archive_verifies(
        self, target: Instance, untouched: tuple[BuiltWorld, bytes]
    ) -> None:
        world, archive = untouched
        before = target.event_count()
        done = target.load(archive, world.owner, as_copy=True)  # leaves the original id free
        assert target.event_count() == before + done.events == before + len(lines_of(archive)) - 1


class TestUploadLimits:
    """The import route reads up to IMPORT_MAX_BYTES, whatever MAX_BODY_BYTES allows others."""

    def post(self, target: Instance, archive: bytes, **limits: int) -> Any:
        config = Config(database_url=target.url, jwt_secret="s" * 40, **limits)  # type: ignore[arg-type]
        client = create_app(config).test_client()
        token = issue(config, str(uuid4()), "access")
        return client.post(
            "/api/v1/worlds/import?as_copy=true",
            data=archive,
            headers={"Authorization": f"Bearer {token}", "Content-Type": MEDIA_TYPE},
        )

    def test_an_archive_above_the_body_limit_of_other_routes_imports(
        self, target: Instance, archive: bytes
    ) -> None:
        response = self.post(target, archive, max_body_bytes=len(archive) // 10)
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["events"] == len(lines_of(archive))  # + the importer's

    def test_an_archive_above_import_max_bytes_is_refused_with_413(
        self, target: Instance, archive: bytes
    ) -> None:
        before = target.event_count()
        response = self.post(target, archive, import_max_bytes=len(archive) - 1)
        assert response.status_code == 413
        assert response.mimetype == "application/problem+json"
        assert target.event_count() == before


def _line(value: dict[str, Any]) -> bytes:
    return (
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        + b"\n"
    )


def big_world(history: WorldHistory, total: int) -> tuple[UUID, int]:
    """A world of about `total` events (and how many): elements, each changed three times."""
    owner = str(uuid4())
    world_id = uuid4()
    with recorded_by(Provenance(actor=owner, correlation_id="req-big")):
        world = World.create(world_id, name="Big", owner_id=owner)
        main = Branch.start(world.register_branch("main"), world_id=world_id, name="main")
        history.save(world, main)
        recorded = 3
        while recorded < total:
            element = str(uuid4())
            metadata = {"lore": "x" * 200, "rank": recorded}
            main.add_element(element, {"kind": "character", "name": "N", "metadata": metadata})
            for round_ in range(3):
                main.update_element(element, {"summary": f"told {round_} times"}, None)
            recorded += 4
            if len(main.pending_events) >= 2000:
                history.save(main)
        history.save(main)
    return world_id, recorded


def traced_peak(work: Callable[[], object]) -> int:
    """How far Python's traced memory rose above where it stood while `work` ran."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        work()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


class TestMemory:
    def test_export_and_import_stream_a_large_world(
        self, source: Instance, target: Instance, tmp_path: Path
    ) -> None:
        started = time.monotonic()
        world_id, recorded = big_world(source.history, BIG_WORLD_EVENTS)
        built_in = time.monotonic() - started
        path = tmp_path / "big.ndjson"

        def export() -> None:
            with path.open("wb") as out:
                for chunk in export_archive(source.engine, source.history.mapper, world_id):
                    out.write(chunk)

        export_peak = traced_peak(export)
        size = path.stat().st_size

        def load() -> None:
            with path.open("rb") as archive:
                import_archive(
                    target.history,
                    target.engine,
                    read_lines(archive),
                    Provenance(actor=str(uuid4())),
                )

        before = target.event_count()
        import_peak = traced_peak(load)
        elapsed = time.monotonic() - started
        print(
            f"\narchive {size / 1e6:.1f} MB, {recorded} events; peak growth: export "
            f"{export_peak / 1e6:.2f} MB, import {import_peak / 1e6:.2f} MB; built in "
            f"{built_in:.1f} s, all in {elapsed:.1f} s"
        )
        assert target.event_count() == before + recorded + 1  # + the importer's role
        assert size > 10_000_000
        assert export_peak < size / 4
        assert import_peak < size / 4
