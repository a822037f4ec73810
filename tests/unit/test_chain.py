"""Provenance on every event and the tamper-evident hash chain."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands import branch_events as ev
from commands.application import WorldHistory
from commands.branch import Branch
from commands.chain import (
    GENESIS_HASH,
    canonical_json,
    digest_of,
    event_data,
    event_digest,
    first_broken_link,
)
from commands.chained import ChainedAggregate
from commands.dates import Calendar
from commands.messages import AddEntity, CreateWorld, RemoveEntity, UpdateEntity
from commands.provenance import SYSTEM, Provenance, current_provenance, recorded_by
from commands.world import World, branch_id

WRITER = Provenance(
    actor="alice", command_id="cmd-1", correlation_id="req-1", causation_id="proposal-9"
)


def pending(aggregate: ChainedAggregate) -> list[Any]:
    """Collect the events `aggregate` has triggered and not yet handed over."""
    return list(aggregate.collect_events())


def stream(app: WorldHistory, stream_id: UUID) -> list[Any]:
    """The stored events of one stream, read back through the application."""
    return list(app.events.get(stream_id))


@pytest.fixture
def history(calendar: Calendar) -> list[Any]:
    """Six events of one branch, all recorded by WRITER."""
    with recorded_by(WRITER):
        branch = Branch.start(uuid4(), world_id=uuid4(), name="main")
        branch.add_timeline("t1", {"name": "T"})
        branch.add_location("l1", {"name": "L", "kind": "city", "metadata": {"pop": 3}})
        branch.add_element("e1", {"kind": "character", "name": "E", "tags": ["x"]})
        branch.add_timeline_event(
            "te1",
            {"timeline_id": "t1", "title": "A", "start": {"year": -5}, "element_ids": ["e1"]},
            calendar,
        )
        branch.update_location("l1", {"metadata": {"pop": None}}, None)
    return list(pending(branch))


class TestProvenance:
    def test_every_event_carries_the_provenance_it_was_recorded_by(
        self, history: list[Any]
    ) -> None:
        assert len(history) == 6
        assert all(
            e.meta
            == {
                "actor": "alice",
                "command_id": "cmd-1",
                "correlation_id": "req-1",
                "causation_id": "proposal-9",
            }
            for e in history
        )

    def test_world_events_carry_it_too(self) -> None:
        with recorded_by(WRITER):
            world = World.create(uuid4(), name="W", owner_id="alice")
            world.set_member_role("bob", "editor")
            world.register_branch("main")
        assert [e.meta["actor"] for e in pending(world)] == ["alice"] * 3

    def test_events_outside_any_block_are_recorded_by_the_system(self) -> None:
        world = World.create(uuid4(), name="W", owner_id="alice")
        (event,) = pending(world)
        assert event.meta == SYSTEM.as_meta()
        assert event.meta["actor"] == "system"

    def test_blocks_nest_and_restore_the_outer_provenance(self) -> None:
        bob = Provenance(actor="bob")
        assert current_provenance() == SYSTEM
        with recorded_by(WRITER):
            with recorded_by(bob):
                assert current_provenance() == bob
            assert current_provenance() == WRITER
        assert current_provenance() == SYSTEM

    def test_the_outer_provenance_is_restored_after_an_error(self) -> None:
        with pytest.raises(RuntimeError), recorded_by(WRITER):
            raise RuntimeError("boom")
        assert current_provenance() == SYSTEM

    def test_each_provenance_gets_its_own_command_id(self) -> None:
        first, second = Provenance(actor="a"), Provenance(actor="a")
        assert first.command_id != second.command_id
        assert UUID(first.command_id)
        assert first.as_meta() == {
            "actor": "a",
            "command_id": first.command_id,
            "correlation_id": None,
            "causation_id": None,
        }


class TestTheChain:
    def test_the_first_event_links_to_the_genesis_hash(self, history: list[Any]) -> None:
        assert history[0].prev_hash == GENESIS_HASH

    def test_each_event_links_to_the_hash_of_the_one_before(self, history: list[Any]) -> None:
        for before, after in pairwise(history):
            assert after.prev_hash == before.hash

    def test_each_hash_is_the_digest_of_the_event(self, history: list[Any]) -> None:
        assert all(digest_of(e) == e.hash for e in history)
        assert len({e.hash for e in history}) == len(history)

    def test_hashes_are_sha256_hex(self, history: list[Any]) -> None:
        assert all(len(e.hash) == 64 and int(e.hash, 16) >= 0 for e in history)

    def test_the_aggregate_remembers_its_last_hash(self) -> None:
        branch = Branch.start(uuid4(), world_id=uuid4(), name="main")
        branch.add_timeline("t1", {"name": "T"})
        events = pending(branch)
        assert branch.last_hash == events[-1].hash

    def test_the_hash_is_the_documented_formula(self, history: list[Any]) -> None:
        event = history[1]
        assert event.hash == event_digest(
            event.prev_hash,
            stream_id=event.originator_id,
            version=event.originator_version,
            event_type="TimelineAdded",
            timestamp=event.timestamp,
            meta=event.meta,
            data={"entity_id": "t1", "fields": {"name": "T", "description": None}},
        )

    def test_a_fork_chains_to_its_parents_hash(self, history: list[Any]) -> None:
        parent_hash = history[-1].hash
        fork = Branch._start(
            ev.BranchForked,
            id=uuid4(),
            prev_hash=parent_hash,
            world_id=str(uuid4()),
            name="what-if",
            parent_branch_id=str(history[0].originator_id),
            parent_branch="main",
            at_version=len(history) - 1,
            parent_hash=parent_hash,
        )
        fork.add_timeline("t2", {"name": "Alt"})
        own = pending(fork)
        assert own[0].prev_hash == parent_hash
        assert first_broken_link(own, expected_prev=parent_hash) is None
        assert first_broken_link([*history, *own], expected_prev=GENESIS_HASH) is None


class TestFirstBrokenLink:
    def test_an_intact_chain_has_none(self, history: list[Any]) -> None:
        assert first_broken_link(history) is None
        assert first_broken_link(history, expected_prev=GENESIS_HASH) is None

    def test_an_empty_chain_has_none(self) -> None:
        assert first_broken_link([]) is None

    def test_finds_an_event_whose_data_was_changed(self, history: list[Any]) -> None:
        tampered = dataclasses.replace(history[2], fields={**history[2].fields, "name": "Forged"})
        assert first_broken_link([*history[:2], tampered, *history[3:]]) is tampered

    def test_finds_an_event_whose_meta_was_changed(self, history: list[Any]) -> None:
        tampered = dataclasses.replace(history[3], meta={**history[3].meta, "actor": "mallory"})
        assert first_broken_link([*history[:3], tampered, *history[4:]]) is tampered

    def test_finds_an_event_whose_timestamp_was_changed(self, history: list[Any]) -> None:
        tampered = dataclasses.replace(history[1], timestamp=history[1].timestamp + timedelta(1))
        assert first_broken_link([history[0], tampered, *history[2:]]) is tampered

    def test_finds_the_first_event_when_it_was_changed(self, history: list[Any]) -> None:
        tampered = dataclasses.replace(history[0], name="elsewhere")
        assert first_broken_link([tampered, *history[1:]], GENESIS_HASH) is tampered

    def test_finds_the_event_after_a_missing_one(self, history: list[Any]) -> None:
        assert first_broken_link([*history[:2], *history[3:]]) is history[3]

    def test_finds_events_out_of_order(self, history: list[Any]) -> None:
        swapped = [history[0], history[2], history[1], *history[3:]]
        assert first_broken_link(swapped) is history[2]

    def test_finds_a_forged_event_even_when_its_hash_was_recomputed(
        self, history: list[Any]
    ) -> None:
        forged = dataclasses.replace(history[2], fields={**history[2].fields, "kind": "ruin"})
        forged = dataclasses.replace(forged, hash=digest_of(forged))
        assert digest_of(forged) == forged.hash
        assert first_broken_link([*history[:2], forged, *history[3:]]) is history[3]

    def test_finds_a_broken_link_whose_own_hash_verifies(self, history: list[Any]) -> None:
        relinked = dataclasses.replace(history[4], prev_hash="f" * 64)
        relinked = dataclasses.replace(relinked, hash=digest_of(relinked))
        assert first_broken_link([*history[:4], relinked, *history[5:]]) is relinked

    def test_checks_the_first_link_against_the_expected_hash(self, history: list[Any]) -> None:
        assert first_broken_link(history, expected_prev="e" * 64) is history[0]
        assert first_broken_link(history[3:], expected_prev=history[2].hash) is None


class TestCanonicalForm:
    def test_is_sorted_and_compact(self) -> None:
        assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": None}]}) == (
            '{"a":[1,{"c":null,"d":2}],"b":1}'
        )

    def test_writes_uuids_and_datetimes_as_strings(self) -> None:
        when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
        uid = UUID("12345678-1234-5678-1234-567812345678")
        assert json.loads(canonical_json({"id": uid, "at": when})) == {
            "id": str(uid),
            "at": "2024-01-02T03:04:05+00:00",
        }

    def test_refuses_values_it_cannot_hash(self) -> None:
        with pytest.raises(TypeError):
            canonical_json({"x": object()})

    def test_event_data_leaves_out_the_envelope(self, history: list[Any]) -> None:
        assert event_data(history[1]) == {
            "entity_id": "t1",
            "fields": {"name": "T", "description": None},
        }
        assert set(event_data(history[0])) == {"world_id", "name"}

    def test_every_input_of_the_digest_changes_the_hash(self) -> None:
        stamp = datetime(2024, 1, 1, tzinfo=UTC)
        args: dict[str, Any] = {
            "stream_id": UUID(int=1),
            "version": 2,
            "event_type": "X",
            "timestamp": stamp,
            "meta": {"actor": "a"},
            "data": {"k": 1},
        }
        base = event_digest(GENESIS_HASH, **args)
        assert event_digest(GENESIS_HASH, **args) == base
        for key, other in [
            ("stream_id", UUID(int=2)),
            ("version", 3),
            ("event_type", "Y"),
            ("timestamp", stamp + timedelta(seconds=1)),
            ("meta", {"actor": "b"}),
            ("data", {"k": 2}),
        ]:
            assert event_digest(GENESIS_HASH, **{**args, key: other}) != base
        assert event_digest("1" * 64, **args) != base


class TestTheChainAfterStorage:
    def test_stored_events_still_verify(self, alice: Provenance) -> None:
        app = WorldHistory()
        world_id = uuid4()
        app.handle(CreateWorld(world_id=world_id, owner_id="alice", name="W"), alice)
        commands: list[Any] = [
            AddEntity(world_id, "main", "timelines", "t1", {"name": "T"}),
            AddEntity(world_id, "main", "locations", "l1", {"name": "L", "kind": "k"}),
            AddEntity(world_id, "main", "elements", "e1", {"kind": "k", "name": "E"}),
            AddEntity(
                world_id,
                "main",
                "timeline_events",
                "te1",
                {
                    "timeline_id": "t1",
                    "title": "A",
                    "start": {"year": -130, "month": 3},
                    "location_id": "l1",
                    "element_ids": ["e1"],
                    "metadata": {"n": {"deep": [1, 2]}},
                },
            ),
            UpdateEntity(world_id, "main", "locations", "l1", {"metadata": {"a": 1}}),
            RemoveEntity(world_id, "main", "locations", "l1", cascade=True),
        ]
        for command in commands:
            app.handle(command, alice)

        stored = stream(app, branch_id(world_id, "main"))
        assert [type(e).__name__ for e in stored] == [
            "BranchStarted",
            "TimelineAdded",
            "LocationAdded",
            "ElementAdded",
            "TimelineEventAdded",
            "LocationUpdated",
            "TimelineEventUpdated",
            "LocationRemoved",
        ]
        assert first_broken_link(stored, expected_prev=GENESIS_HASH) is None
        world_events = stream(app, world_id)
        assert first_broken_link(world_events, expected_prev=GENESIS_HASH) is None
        assert app.repository.get(branch_id(world_id, "main")).last_hash == stored[-1].hash

    def test_stored_events_keep_the_commands_provenance(self) -> None:
        app = WorldHistory()
        world_id = uuid4()
        app.handle(CreateWorld(world_id=world_id, owner_id="alice", name="W"), WRITER)
        bob = Provenance(actor="bob", correlation_id="req-2")
        app.handle(AddEntity(world_id, "main", "timelines", "t1", {"name": "T"}), bob)
        stored = stream(app, branch_id(world_id, "main"))
        assert stored[0].meta == WRITER.as_meta()
        assert stored[1].meta == bob.as_meta()
        assert [e.meta for e in stream(app, world_id)] == [WRITER.as_meta()] * 2

    def test_tampering_with_a_stored_event_is_found(self, alice: Provenance) -> None:
        app = WorldHistory()
        world_id = uuid4()
        app.handle(CreateWorld(world_id=world_id, owner_id="alice", name="W"), alice)
        app.handle(AddEntity(world_id, "main", "timelines", "t1", {"name": "T"}), alice)
        app.handle(UpdateEntity(world_id, "main", "timelines", "t1", {"name": "U"}), alice)
        stored = stream(app, branch_id(world_id, "main"))
        tampered = dataclasses.replace(stored[2], changes={"name": "Forged"})
        assert first_broken_link([*stored[:2], tampered], GENESIS_HASH) is tampered

    def test_recorded_hashes_are_the_ones_computed_before_saving(self, alice: Provenance) -> None:
        app = WorldHistory()
        world_id = uuid4()
        app.handle(CreateWorld(world_id=world_id, owner_id="alice", name="W"), alice)
        branch = app.branch(app.world(world_id), "main")
        with recorded_by(alice):
            branch.add_element("e1", {"kind": "k", "name": "E", "metadata": {"x": [1, "2"]}})
        new_events = pending(branch)
        app.save(*new_events)
        stored = stream(app, branch.id)
        assert stored[-1].hash == new_events[-1].hash
        assert first_broken_link(stored, GENESIS_HASH) is None

    def test_a_stored_chain_cannot_be_spliced_across_worlds(self, alice: Provenance) -> None:
        app = WorldHistory()
        one, two = uuid4(), uuid4()
        for world_id in (one, two):
            app.handle(CreateWorld(world_id=world_id, owner_id="alice", name="W"), alice)
            app.handle(AddEntity(world_id, "main", "timelines", "t1", {"name": "T"}), alice)
        first = stream(app, branch_id(one, "main"))
        second = stream(app, branch_id(two, "main"))
        assert first_broken_link([first[0], second[1]], GENESIS_HASH) is second[1]
