"""Verifying a branch's hash chain: the walk over events in memory, and reading it from a store."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from commands.application import WorldHistory
from commands.branch import Branch
from commands.chain import digest_of
from commands.dates import Calendar
from commands.errors import NotFound
from commands.messages import AddEntity, CreateWorld, ForkBranch, UpdateEntity
from commands.provenance import Provenance, recorded_by
from commands.verification import (
    Link,
    StreamRange,
    branch_ranges,
    stored_links,
    verify_branch,
    verify_world,
    walk_chain,
)
from commands.world import branch_id

WRITER = Provenance(actor="alice", command_id="cmd-1", correlation_id="req-1")


def links(events: Sequence[Any], base: int = 0) -> list[Link]:
    """Events of one stream as links at their branch versions (`main` starts at 0)."""
    return [Link(base + e.originator_version - 1, e) for e in events]


def replaced(chain: list[Link], version: int, **changes: Any) -> list[Link]:
    """The chain with the event at `version` altered, its stored hash left as it was."""
    return [
        Link(link.version, dataclasses.replace(link.event, **changes))
        if link.version == version
        else link
        for link in chain
    ]


@pytest.fixture
def main_events(calendar: Calendar) -> list[Any]:
    """Six events of a `main` branch, versions 0 to 5."""
    with recorded_by(WRITER):
        branch = Branch.start(uuid4(), world_id=uuid4(), name="main")
        branch.add_timeline("t1", {"name": "T"})
        branch.add_location("l1", {"name": "Old Keep", "kind": "castle", "metadata": {"a": 1}})
        branch.add_element("e1", {"kind": "character", "name": "E", "tags": ["x"]})
        branch.add_timeline_event(
            "te1", {"timeline_id": "t1", "title": "A", "start": {"year": -5}}, calendar
        )
        branch.update_location("l1", {"metadata": {"a": None}}, None)
    return list(branch.collect_events())


@pytest.fixture
def chain(main_events: list[Any]) -> list[Link]:
    return links(main_events)


def fork_events(parent: list[Any], at_version: int, prev_hash: str | None = None) -> list[Any]:
    """A fork of `parent` at `at_version` (chained to `prev_hash`, its parent's hash there)."""
    parent_hash = prev_hash if prev_hash is not None else parent[at_version].hash
    with recorded_by(WRITER):
        fork = Branch.fork(
            uuid4(),
            world_id=uuid4(),
            name="what-if",
            parent_branch_id=parent[0].originator_id,
            parent_branch="main",
            at_version=at_version,
            parent_hash=parent_hash,
        )
        fork.add_timeline("t2", {"name": "Alt"})
        fork.update_timeline("t2", {"name": "Alternative"}, None)
    return list(fork.collect_events())


class TestAnIntactChain:
    def test_is_valid_and_every_event_was_checked(self, chain: list[Link]) -> None:
        verdict = walk_chain(chain)
        assert verdict.valid
        assert verdict.checked == 6
        assert verdict.first_invalid_version is None

    def test_an_empty_chain_is_valid(self) -> None:
        verdict = walk_chain([])
        assert (verdict.valid, verdict.checked) == (True, 0)

    def test_a_chain_that_does_not_start_at_the_genesis_hash_is_not(
        self, chain: list[Link]
    ) -> None:
        assert walk_chain(chain, expected_prev="e" * 64).first_invalid_version == 0
        assert walk_chain(chain[2:], expected_prev=chain[1].event.hash).valid


class TestTamperedEvents:
    def test_changed_data_is_found_at_its_version(self, chain: list[Link]) -> None:
        forged = {**chain[2].event.fields, "name": "Odd Keep"}
        verdict = walk_chain(replaced(chain, 2, fields=forged))
        assert (verdict.valid, verdict.first_invalid_version) == (False, 2)
        assert verdict.checked == 6

    def test_changed_meta_is_found_at_its_version(self, chain: list[Link]) -> None:
        meta = {**chain[3].event.meta, "actor": "mallory"}
        assert walk_chain(replaced(chain, 3, meta=meta)).first_invalid_version == 3

    def test_a_changed_timestamp_is_found_at_its_version(self, chain: list[Link]) -> None:
        later = chain[4].event.timestamp + timedelta(seconds=1)
        assert walk_chain(replaced(chain, 4, timestamp=later)).first_invalid_version == 4

    def test_a_changed_stored_hash_is_found_at_its_version(self, chain: list[Link]) -> None:
        assert walk_chain(replaced(chain, 1, hash="a" * 64)).first_invalid_version == 1

    def test_a_changed_first_event_is_found_at_version_0(self, chain: list[Link]) -> None:
        assert walk_chain(replaced(chain, 0, name="elsewhere")).first_invalid_version == 0

    def test_a_forged_event_with_a_recomputed_hash_breaks_the_next_link(
        self, chain: list[Link]
    ) -> None:
        forged = dataclasses.replace(chain[2].event, fields={"name": "X", "kind": "ruin"})
        forged = dataclasses.replace(forged, hash=digest_of(forged))
        tampered = [*chain[:2], Link(2, forged), *chain[3:]]
        assert walk_chain(tampered).first_invalid_version == 3

    def test_the_first_of_two_tampered_events_is_reported(self, chain: list[Link]) -> None:
        tampered = replaced(replaced(chain, 4, meta={}), 2, meta={})
        assert walk_chain(tampered).first_invalid_version == 2


class TestBrokenLinks:
    def test_an_event_that_does_not_decode_is_invalid_at_its_version(
        self, chain: list[Link]
    ) -> None:
        verdict = walk_chain([*chain[:3], Link(3, None), *chain[4:]])
        assert (verdict.first_invalid_version, verdict.checked) == (3, 6)

    def test_a_missing_event_breaks_the_link_of_the_one_after(self, chain: list[Link]) -> None:
        assert walk_chain([*chain[:2], *chain[3:]]).first_invalid_version == 3

    def test_swapped_events_are_found(self, chain: list[Link]) -> None:
        swapped = [chain[0], chain[2], chain[1], *chain[3:]]
        assert walk_chain(swapped).first_invalid_version == 2

    def test_an_event_without_chain_fields_is_invalid(self, chain: list[Link]) -> None:
        class Bare:
            originator_version = 2

        assert walk_chain([*chain[:2], Link(2, Bare()), *chain[3:]]).first_invalid_version == 2


class TestForkPoints:
    def test_a_fork_continues_its_parents_chain_at_the_fork_version(
        self, main_events: list[Any]
    ) -> None:
        fork = fork_events(main_events, at_version=3)
        lineage = [*links(main_events[:4]), *links(fork, base=3)]
        assert [link.version for link in lineage] == [0, 1, 2, 3, 3, 4, 5]
        verdict = walk_chain(lineage)
        assert (verdict.valid, verdict.checked) == (True, 7)

    def test_a_fork_linked_to_another_version_of_its_parent_is_found(
        self, main_events: list[Any]
    ) -> None:
        fork = fork_events(main_events, at_version=3, prev_hash=main_events[2].hash)
        lineage = [*links(main_events[:4]), *links(fork, base=3)]
        assert walk_chain(lineage).first_invalid_version == 3
        assert walk_chain(links(fork, base=3), expected_prev=main_events[2].hash).valid

    def test_a_tampered_parent_event_before_the_fork_point_is_found_through_the_fork(
        self, main_events: list[Any]
    ) -> None:
        fork = fork_events(main_events, at_version=3)
        lineage = replaced([*links(main_events[:4]), *links(fork, base=3)], 1, meta={})
        assert walk_chain(lineage).first_invalid_version == 1

    def test_a_fork_whose_parent_hash_disagrees_with_its_link_is_invalid(
        self, main_events: list[Any]
    ) -> None:
        fork = fork_events(main_events, at_version=3)
        forged = dataclasses.replace(fork[0], parent_hash="b" * 64)
        forged = dataclasses.replace(forged, hash=digest_of(forged))
        lineage = [*links(main_events[:4]), Link(3, forged)]
        assert walk_chain(lineage).first_invalid_version == 3


# -- reading the chain from a store -------------------------------------------------------


class TamperedStore:
    """The application's event store as an attacker left it: rows rewritten or deleted."""

    def __init__(self, app: WorldHistory, rows: dict[tuple[UUID, int], bytes | None]) -> None:
        self.mapper = app.mapper
        self.recorder = self
        self._inner = app.recorder
        self._rows = rows

    def select_events(self, originator_id: UUID, **kwargs: Any) -> list[StoredEvent]:
        found = []
        for stored in self._inner.select_events(originator_id, **kwargs):
            key = (UUID(str(stored.originator_id)), stored.originator_version)
            if key in self._rows:
                state = self._rows[key]
                if state is None:
                    continue
                stored = dataclasses.replace(stored, state=state)
            found.append(stored)
        return found


@dataclasses.dataclass
class Story:
    app: WorldHistory
    world_id: UUID

    def stream(self, branch: str) -> UUID:
        return branch_id(self.world_id, branch)

    def stored_state(self, branch: str, stream_version: int) -> bytes:
        (stored,) = self.app.recorder.select_events(
            self.stream(branch), gt=stream_version - 1, lte=stream_version
        )
        return stored.state


@pytest.fixture
def story(app: WorldHistory) -> Story:
    """main at version 4; `alt` forked at 2 (versions 3, 4 its own); `alt2` from alt at 3."""
    world_id = uuid4()
    alice = Provenance(actor="alice")

    def run(command: Any) -> None:
        app.handle(command, alice)

    run(CreateWorld(world_id=world_id, owner_id="alice", name="W"))
    for key in ("a", "b", "c", "d"):
        run(AddEntity(world_id, "main", "timelines", str(uuid4()), {"name": f"Old {key}"}))
    run(ForkBranch(world_id, "alt", "main", 2))
    run(AddEntity(world_id, "alt", "timelines", "t-alt", {"name": "Alt"}))
    run(UpdateEntity(world_id, "alt", "timelines", "t-alt", {"name": "Alt 2"}))
    run(ForkBranch(world_id, "alt2", "alt", 3))
    run(AddEntity(world_id, "alt2", "timelines", "t-alt2", {"name": "Alt2"}))
    return Story(app, world_id)


class TestVerifyingAStoredBranch:
    def test_main_verifies_and_every_event_is_checked(self, story: Story) -> None:
        world = story.app.world(story.world_id)
        verdict = verify_branch(story.app, world, "main")
        assert (verdict.valid, verdict.checked, verdict.first_invalid_version) == (True, 5, None)

    def test_a_fork_is_walked_through_its_fork_point_into_the_parent(self, story: Story) -> None:
        world = story.app.world(story.world_id)
        verdict = verify_branch(story.app, world, "alt")
        # main 0..2, the fork's own first event at 2, then 3 and 4
        assert (verdict.valid, verdict.checked) == (True, 6)

    def test_a_fork_of_a_fork_walks_both_fork_points(self, story: Story) -> None:
        world = story.app.world(story.world_id)
        verdict = verify_branch(story.app, world, "alt2")
        # main 0..2, alt's first event at 2 and its version 3, alt2's first event at 3, then 4
        assert (verdict.valid, verdict.checked) == (True, 7)

    def test_a_tampered_parent_event_before_the_fork_point_shows_in_the_fork(
        self, story: Story
    ) -> None:
        state = story.stored_state("main", 3)  # version 2: the timeline "Old b"
        assert b"Old b" in state
        store = TamperedStore(story.app, {(story.stream("main"), 3): state.replace(b"Old", b"Odd")})
        world = story.app.world(story.world_id)
        for branch in ("main", "alt", "alt2"):
            verdict = verify_branch(cast(WorldHistory, store), world, branch)
            assert (verdict.valid, verdict.first_invalid_version) == (False, 2), branch

    def test_a_tampered_parent_event_after_the_fork_point_does_not_concern_the_fork(
        self, story: Story
    ) -> None:
        state = story.stored_state("main", 5)  # version 4, after alt's fork point
        store = TamperedStore(story.app, {(story.stream("main"), 5): state.replace(b"Old", b"Odd")})
        world = story.app.world(story.world_id)
        assert verify_branch(cast(WorldHistory, store), world, "main").first_invalid_version == 4
        assert verify_branch(cast(WorldHistory, store), world, "alt").valid

    def test_a_row_that_no_longer_decodes_is_invalid_at_its_version(self, story: Story) -> None:
        store = TamperedStore(story.app, {(story.stream("alt"), 2): b"\x00not json"})
        world = story.app.world(story.world_id)
        verdict = verify_branch(cast(WorldHistory, store), world, "alt")
        assert (verdict.valid, verdict.first_invalid_version, verdict.checked) == (False, 3, 6)

    def test_a_deleted_row_is_invalid_at_the_missing_version(self, story: Story) -> None:
        store = TamperedStore(story.app, {(story.stream("main"), 2): None})
        world = story.app.world(story.world_id)
        verdict = verify_branch(cast(WorldHistory, store), world, "main")
        assert (verdict.valid, verdict.first_invalid_version) == (False, 1)

    def test_the_world_stream_verifies_on_its_own(self, story: Story) -> None:
        verdict = verify_world(story.app, story.world_id)
        # created, main registered, alt registered, alt2 registered
        assert (verdict.valid, verdict.checked) == (True, 4)
        store = TamperedStore(story.app, {(story.world_id, 3): b"{}"})
        assert verify_world(cast(WorldHistory, store), story.world_id).first_invalid_version == 3


class TestReadingTheLineage:
    def test_ranges_run_root_first_each_up_to_where_its_child_forked(self, story: Story) -> None:
        ranges = branch_ranges(story.app.world(story.world_id), "alt2")
        assert ranges == [
            StreamRange(story.stream("main"), 0, 2),
            StreamRange(story.stream("alt"), 2, 3),
            StreamRange(story.stream("alt2"), 3, None),
        ]

    def test_a_fork_below_its_parents_fork_point_reads_the_grandparent_only_that_far(
        self, story: Story
    ) -> None:
        story.app.handle(ForkBranch(story.world_id, "early", "alt2", 1), Provenance(actor="a"))
        world = story.app.world(story.world_id)
        ranges = branch_ranges(world, "early")
        assert [(r.base, r.upto) for r in ranges] == [(0, 1), (2, 1), (3, 1), (1, None)]
        versions = [link.version for link in stored_links(story.app, ranges)]
        assert versions == [0, 1, 1]
        assert verify_branch(story.app, world, "early").valid

    def test_pages_of_any_size_read_the_same_links(self, story: Story) -> None:
        ranges = branch_ranges(story.app.world(story.world_id), "alt2")
        whole = [(link.version, link.event.hash) for link in stored_links(story.app, ranges)]
        paged = [(link.version, link.event.hash) for link in stored_links(story.app, ranges, 2)]
        assert paged == whole
        assert [version for version, _ in whole] == [0, 1, 2, 2, 3, 3, 4]

    def test_an_unknown_branch_is_not_found(self, story: Story) -> None:
        with pytest.raises(NotFound):
            branch_ranges(story.app.world(story.world_id), "nowhere")
