"""The write path's shortcuts give exactly what the plain ways gave: the same hashes (so
old archives verify), the same JSON, the same refusals, the same provenance and recordings."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import Mapper

from commands.application import WorldHistory
from commands.branch import Branch
from commands.chain import GENESIS_HASH, canonical_json, event_digest
from commands.direct_save import stored_event_maker
from commands.errors import InvalidCommand
from commands.json_encoding import compact_encoder
from commands.messages import AddEntity, CreateWorld
from commands.provenance import Provenance, recorded_by
from commands.validation import check_metadata, check_storable, nul_path, reserved_path
from commands.world import World, branch_id

# Computed with the digest as first written: sha256(prev + json.dumps(whole body, sorted)).
GOLDEN = "aed5854690e34ca6ea929163c3f39910295cf5cbf25017ab6b562e28fa28a429"
ODD_DATA: dict[str, Any] = {
    "entity_id": "e1",
    "fields": {
        "name": "Ünïcødé ☃ \U0001f600",
        "tags": ["b", "a"],
        "metadata": {"z": 1.5, "a": [1, None, True, {"y": "\\u0000"}]},
        "when": datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=2))),
        "ref": UUID(int=9),
    },
}
ODD_META = {"actor": 'ädä "q"', "command_id": "c", "correlation_id": None, "causation_id": None}


def reference_digest(prev: str, **body: Any) -> str:
    """The documented formula, spelled out with json.dumps of the whole body."""

    def encode(value: Any) -> str:
        if isinstance(value, (UUID, datetime)):
            return str(value) if isinstance(value, UUID) else value.isoformat()
        raise TypeError(type(value).__name__)

    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=encode)
    return hashlib.sha256((prev + text).encode()).hexdigest()


class TestTheDigest:
    def test_matches_the_hash_recorded_by_the_first_implementation(self) -> None:
        digest = event_digest(
            GENESIS_HASH,
            stream_id=UUID(int=7),
            version=3,
            event_type="ElementAdded",
            timestamp=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
            meta=ODD_META,
            data=ODD_DATA,
        )
        assert digest == GOLDEN

    @pytest.mark.parametrize(
        "data",
        [{}, ODD_DATA, {"k": [1, 2.5, -3, None, False, "\x00\n\t\"'\\"]}, {"b": {"y": 1, "x": 2}}],
    )
    @pytest.mark.parametrize("version", [1, 2**40])
    def test_is_the_documented_formula(self, data: dict[str, Any], version: int) -> None:
        body: dict[str, Any] = {
            "stream": uuid4(),
            "version": version,
            "type": "TimelineEventRescheduled",
            "timestamp": datetime.now(UTC),
            "meta": Provenance("ü", origin="ai-proposal").as_meta(),
            "data": data,
        }
        assert event_digest(
            "f" * 64,
            stream_id=body["stream"],
            version=version,
            event_type=body["type"],
            timestamp=body["timestamp"],
            meta=body["meta"],
            data=data,
        ) == reference_digest("f" * 64, **body)

    def test_an_unhashable_value_is_refused(self) -> None:
        with pytest.raises(TypeError, match="cannot hash"):
            event_digest(
                GENESIS_HASH,
                stream_id=uuid4(),
                version=1,
                event_type="X",
                timestamp=datetime.now(UTC),
                meta={},
                data={"x": {1, 2}},
            )


class TestCompiledEncoders:
    VALUES: list[Any] = [
        None,
        "plain",
        'ü\x00"\\\n',
        1.5,
        float("nan"),
        -(2**70),
        [],
        {},
        {"b": [1, {"d": None, "c": True}], "a": "☃", "_type_": 1},
    ]

    @pytest.mark.parametrize("value", VALUES)
    @pytest.mark.parametrize("sort_keys", [True, False])
    @pytest.mark.parametrize("ensure_ascii", [True, False])
    def test_write_what_json_dumps_writes(
        self, value: Any, sort_keys: bool, ensure_ascii: bool
    ) -> None:
        encode = compact_encoder(sort_keys=sort_keys, ensure_ascii=ensure_ascii)
        expected = json.dumps(
            value, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=ensure_ascii
        )
        assert encode(value) == expected

    def test_refuse_what_json_cannot_write(self) -> None:
        with pytest.raises(TypeError, match="not JSON serializable"):
            compact_encoder(sort_keys=False, ensure_ascii=False)({"x": object()})

    def test_canonical_json_writes_uuids_and_datetimes(self) -> None:
        when = datetime(2024, 1, 2, tzinfo=UTC)
        expected = json.dumps([str(UUID(int=1)), when.isoformat()], separators=(",", ":"))
        assert canonical_json([UUID(int=1), when]) == expected


class TestStorableChecks:
    """The JSON-based shortcut never lets through what the full walk refuses."""

    POISON = {"_type_": "uuid_hex", "_data_": "0" * 32}
    REFUSED: list[Any] = [
        {"a": "x\x00y"},
        {"a\x00": 1},
        {"a": [1, {"b": ["\x00"]}]},
        {"deep": [{"x": POISON}]},
        POISON,
    ]
    ACCEPTED: list[Any] = [
        {"a": "\\u0000"},  # the six characters, not a NUL
        {"_type_": 1},
        {"x": {"_data_": 1}, "_type_": 2},
        {"note": '"_type_": "uuid_hex"'},
        {"ü": ["☃", 1.5, None]},
    ]

    @pytest.mark.parametrize("value", REFUSED)
    def test_metadata_with_a_nul_or_a_typed_shape_is_refused_where_it_sits(
        self, value: Any
    ) -> None:
        assert (nul_path(value) or reserved_path(value)) is not None
        with pytest.raises(InvalidCommand) as refused:
            check_metadata(value)
        with pytest.raises(InvalidCommand) as walked:  # the full walk, on a plain string
            check_storable(value, "metadata")
        assert refused.value.errors == walked.value.errors

    @pytest.mark.parametrize("value", ACCEPTED)
    def test_lookalikes_pass(self, value: Any) -> None:
        assert check_metadata(value) is value
        check_storable(value, "body")

    @pytest.mark.parametrize("value", REFUSED)
    def test_event_bodies_are_checked_too(self, value: Any) -> None:
        app = WorldHistory()
        world_id = uuid4()
        app.handle(CreateWorld(world_id=world_id, owner_id="a", name="W"), Provenance("a"))
        branch = app.branch(app.world(world_id), "main")
        with recorded_by(Provenance("a")), pytest.raises(InvalidCommand):
            branch.record_merge(value, 1)  # type: ignore[arg-type]  # no check on the way in
        assert branch.pending_events == []

    def test_a_nul_in_a_plain_string_is_refused(self) -> None:
        with pytest.raises(InvalidCommand):
            check_storable("a\x00", "name")
        check_storable("fine", "name")


class TestProvenanceMeta:
    @pytest.mark.parametrize(
        "provenance",
        [
            Provenance("ann"),
            Provenance("ann", "cmd", "req", "cause", origin="ai-proposal"),
            Provenance("ann", correlation_id="r"),
        ],
    )
    def test_is_every_field_with_origin_only_when_set(self, provenance: Provenance) -> None:
        expected = asdict(provenance)
        if expected["origin"] is None:
            del expected["origin"]
        meta = provenance.as_meta()
        assert meta == expected and list(meta) == list(expected)

    def test_as_meta_knows_every_field(self) -> None:
        names = [f.name for f in fields(Provenance)]
        assert set(Provenance("a", origin="o").as_meta()) == set(names)


class TestSaving:
    def test_recordings_are_what_the_generic_save_gives(self) -> None:
        fast, plain = WorldHistory(), WorldHistory()
        plain._direct_save = False  # the generic path of Application.save
        world_id = uuid4()
        for app in (fast, plain):
            app.handle(CreateWorld(world_id=world_id, owner_id="a", name="W"), Provenance("a"))
        got = []
        for app in (fast, plain):
            branch = app.branch(app.world(world_id), "main")
            with recorded_by(Provenance("a")):
                branch.add_timeline("t1", {"name": "T"})
                branch.add_timeline("t2", {"name": "U"})
            recordings = app.save(None, branch)
            assert branch.pending_events == []
            got.append([(r.notification.id, r.domain_event.originator_version) for r in recordings])
        assert got[0] == got[1] == [(4, 2), (5, 3)]

    def test_stored_events_are_byte_for_byte_what_the_mapper_stores(self) -> None:
        app = WorldHistory()
        with recorded_by(Provenance('ädä "q"', origin="ai-proposal")):
            world = World.create(uuid4(), name="Wörld ☃ \U0001f600", owner_id="a")
            world.register_branch("main")
            branch = Branch.start(branch_id(world.id, "main"), world_id=world.id, name="main")
            fields = {"name": "Ünï", "kind": "k", "tags": ["b", "a"], "summary": "\\u0000"}
            metadata = {"z": 1.5, "big": 1e300, "a": [1, None, True, {"y": "é"}], "n": -0.0}
            branch.add_element("e1", {**fields, "metadata": metadata})
            branch.add_timeline("t1", {"name": "T"})
            when = {"timeline_id": "t1", "title": "x", "start": {"year": -3, "month": 2}}
            branch.add_timeline_event("v1", when, world.calendar_rules)
        events = [*world.collect_events(), *branch.collect_events()]
        assert len(events) == 6
        for event in events:
            assert app._to_stored(event) == app.mapper.to_stored_event(event)

    def test_a_mapper_that_compresses_or_encrypts_keeps_its_own_mapping(self) -> None:
        mapper = WorldHistory().mapper
        compressing: Mapper[UUID] = Mapper(mapper.transcoder, compressor=ZlibCompressor())
        assert stored_event_maker(compressing) == compressing.to_stored_event
        assert stored_event_maker(mapper) != mapper.to_stored_event

    def test_events_given_directly_take_the_generic_path(self) -> None:
        app = WorldHistory()
        world_id = uuid4()
        app.handle(CreateWorld(world_id=world_id, owner_id="a", name="W"), Provenance("a"))
        branch = app.branch(app.world(world_id), "main")
        with recorded_by(Provenance("a")):
            branch.add_timeline("t1", {"name": "T"})
        events = branch.collect_events()
        recordings = app.save(*events)
        assert [r.domain_event for r in recordings] == events
        assert app.branch(app.world(world_id), "main").entities["timelines"]["t1"]["name"] == "T"

    def test_hooks_of_a_subclass_keep_the_generic_path(self) -> None:
        class Noticing(WorldHistory):
            def _notify(self, recordings: Any) -> None:
                self.noticed = len(recordings)

        app = Noticing()
        assert not app._direct_save and WorldHistory()._direct_save
        app.handle(CreateWorld(world_id=uuid4(), owner_id="a", name="W"), Provenance("a"))
        assert app.noticed == 3
        assert Noticing._notify is not Application._notify

    def test_a_command_records_one_event_per_change(self) -> None:
        app = WorldHistory()
        world_id = uuid4()
        app.handle(CreateWorld(world_id=world_id, owner_id="a", name="W"), Provenance("a"))
        outcome = app.handle(
            AddEntity(world_id, "main", "timelines", "t1", {"name": "T"}), Provenance("a")
        )
        assert (outcome.position, outcome.events, outcome.version) == (4, 1, 1)
        (last,) = app.recorder.select_notifications(4, 10)
        assert last.originator_id == branch_id(world_id, "main")
