"""Forks, comparisons, merges and reverts through the write-side application, in memory."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.application import Outcome, WorldHistory
from commands.branch_events import BranchForked
from commands.branching import MergeConflict, head_of
from commands.errors import Conflict, InvalidCommand, NotFound
from commands.messages import (
    AddEntity,
    Command,
    CreateWorld,
    ForkBranch,
    MergeBranch,
    RemoveEntity,
    RevertBranch,
    UpdateEntity,
)
from commands.provenance import Provenance
from commands.reconcile import content_of
from commands.world import branch_id

Content = dict[str, dict[str, dict[str, Any] | None]]
WRITER = Provenance(actor="writer", correlation_id="req")


class Story:
    """One world in an in-memory application, and short ways to change and read it."""

    def __init__(self, app: WorldHistory) -> None:
        self.app = app
        self.world_id = uuid4()
        self.run(CreateWorld(world_id=self.world_id, owner_id="writer", name="Arda"))

    def run(self, command: Command) -> Outcome:
        return self.app.handle(command, WRITER)

    def add(self, branch: str, collection: str, entity_id: str, **fields: Any) -> int:
        """Add an entity; returns the branch version of its event."""
        added = self.run(AddEntity(self.world_id, branch, collection, entity_id, fields))
        return int(added.resource["version"])

    def update(self, branch: str, collection: str, entity_id: str, **changes: Any) -> int:
        updated = self.run(UpdateEntity(self.world_id, branch, collection, entity_id, changes))
        return updated.version

    def remove(self, branch: str, collection: str, entity_id: str) -> int:
        return self.run(RemoveEntity(self.world_id, branch, collection, entity_id)).version

    def fork(self, name: str, source: str = "main", at: int | None = None) -> Outcome:
        return self.run(ForkBranch(self.world_id, name, source, at))

    def merge(self, target: str, source: str, dry_run: bool = False) -> Outcome:
        return self.run(MergeBranch(self.world_id, target, source, dry_run))

    def revert(self, branch: str, to_version: int) -> Outcome:
        return self.run(RevertBranch(self.world_id, branch, to_version))

    def stream_id(self, branch: str) -> UUID:
        return branch_id(self.world_id, branch)

    def head(self, branch: str) -> int:
        return self.app.load_branch(self.stream_id(branch)).head_version

    def content(self, branch: str, version: int | None = None) -> Content:
        """Every entity's fields (without id and version) as the branch stood at `version`."""
        loaded = self.app.load_branch(self.stream_id(branch), version)
        return {
            collection: {i: content_of(e) for i, e in entities.items()}
            for collection, entities in loaded.entities.items()
        }

    def entity(self, branch: str, collection: str, entity_id: str) -> dict[str, Any]:
        return self.app.entity(self.world_id, branch, collection, entity_id)

    def compare(self, base: str, head: str) -> dict[str, Any]:
        return self.app.compare(self.world_id, base, head)

    def stored(self) -> list[Any]:
        """Every event stored by the application, in order."""
        return list(self.app.recorder.select_notifications(start=1, limit=100_000))

    def stored_types(self, after: int) -> list[str]:
        return [n.topic.replace(":", ".").rsplit(".", 1)[-1] for n in self.stored()[after:]]


def changed_ids(comparison: dict[str, Any]) -> dict[str, str]:
    return {c["entity_id"]: c["change"] for c in comparison["changes"]}


@pytest.fixture
def story(app: WorldHistory) -> Story:
    """main: t1 (v1), l1 Keep (v2), e1 Guard (v3), te1 on t1 at l1 linking e1 (v4)."""
    told = Story(app)
    told.add("main", "timelines", "t1", name="Watches")
    told.add("main", "locations", "l1", name="Keep", kind="castle", metadata={"walls": 2})
    told.add("main", "elements", "e1", name="Guard", kind="character", tags=["night"])
    told.add(
        "main",
        "timeline_events",
        "te1",
        timeline_id="t1",
        title="Night watch",
        start={"year": 12},
        location_id="l1",
        element_ids=["e1"],
    )
    assert told.head("main") == 4
    return told


class TestForking:
    def test_a_fork_at_the_head_has_the_parents_state_and_continues_its_versions(
        self, story: Story
    ) -> None:
        forked = story.fork("alt")
        assert forked.resource == {
            "name": "alt",
            "head_version": 4,
            "forked_from": {"branch": "main", "version": 4},
        }
        assert story.content("alt") == story.content("main")
        assert story.add("alt", "elements", "e2", name="Spy", kind="character") == 5

    def test_a_fork_at_an_earlier_version_has_the_parents_state_there(self, story: Story) -> None:
        forked = story.fork("alt", at=2)
        assert forked.resource["head_version"] == 2
        assert forked.resource["forked_from"] == {"branch": "main", "version": 2}
        assert story.head("alt") == 2
        assert story.content("alt") == story.content("main", 2)
        assert set(story.content("alt")["locations"]) == {"l1"}
        assert story.content("alt")["elements"] == {}
        assert story.add("alt", "elements", "e2", name="Spy", kind="character") == 3

    def test_the_fork_event_chains_to_the_parents_hash_at_the_fork_point(
        self, story: Story
    ) -> None:
        story.fork("alt", at=2)
        first: Any = next(iter(story.app.events.get(story.stream_id("alt"))))
        assert type(first).__name__ == BranchForked.__name__
        expected = story.app.hash_at(story.stream_id("main"), 2)
        assert expected != story.app.hash_at(story.stream_id("main"), 4)
        assert first.prev_hash == expected
        assert first.parent_hash == expected
        assert first.at_version == 2

    def test_hash_at_names_the_hash_of_the_event_at_each_version_through_a_fork(
        self, story: Story
    ) -> None:
        story.fork("alt", at=2)
        story.add("alt", "elements", "e2", name="Spy", kind="character")
        main: list[Any] = list(story.app.events.get(story.stream_id("main")))
        alt: list[Any] = list(story.app.events.get(story.stream_id("alt")))
        lineage = [event.hash for event in main[:2]] + [event.hash for event in alt]
        for version, expected in enumerate(lineage):
            assert story.app.hash_at(story.stream_id("alt"), version) == expected
        for version, event in enumerate(main):
            assert story.app.hash_at(story.stream_id("main"), version) == event.hash
        with pytest.raises(IndexError):
            story.app.hash_at(story.stream_id("main"), len(main))

    def test_later_changes_on_either_side_stay_on_their_side(self, story: Story) -> None:
        story.fork("alt")
        story.update("main", "locations", "l1", name="Main keep")
        story.update("alt", "locations", "l1", name="Alt keep")
        story.add("alt", "elements", "e2", name="Spy", kind="character")
        assert story.entity("main", "locations", "l1")["name"] == "Main keep"
        assert story.entity("alt", "locations", "l1")["name"] == "Alt keep"
        assert "e2" not in story.content("main")["elements"]

    def test_a_fork_of_a_fork_before_the_inner_fork_point_reads_the_grandparent(
        self, story: Story
    ) -> None:
        story.fork("alt", at=3)
        story.update("alt", "locations", "l1", name="Alt keep")  # alt v4
        story.fork("alt2", source="alt", at=2)
        assert story.head("alt2") == 2
        assert story.content("alt2") == story.content("main", 2)
        assert story.entity("alt2", "locations", "l1")["name"] == "Keep"

    def test_a_fork_of_a_fork_after_the_inner_fork_point_has_the_forks_changes(
        self, story: Story
    ) -> None:
        story.fork("alt", at=3)
        story.update("alt", "locations", "l1", name="Alt keep")  # alt v4
        story.update("main", "locations", "l1", name="Main keep")  # main v5
        story.fork("alt2", source="alt", at=4)
        assert story.content("alt2") == story.content("alt")
        assert story.entity("alt2", "locations", "l1")["name"] == "Alt keep"


class TestForkRefusals:
    @pytest.mark.parametrize("name", ["", "-dash", ".dot", "has space", "slash/y", "é", "x" * 101])
    def test_a_bad_name_is_invalid(self, story: Story, name: str) -> None:
        before = len(story.stored())
        with pytest.raises(InvalidCommand) as refused:
            story.fork(name)
        assert "name" in refused.value.errors
        assert len(story.stored()) == before

    @pytest.mark.parametrize("name", ["a", "What-if_2.0", "x" * 100])
    def test_a_good_name_is_accepted(self, story: Story, name: str) -> None:
        assert story.fork(name).resource["name"] == name

    def test_a_taken_name_is_a_conflict(self, story: Story) -> None:
        story.fork("alt")
        before = len(story.stored())
        with pytest.raises(Conflict):
            story.fork("alt")
        with pytest.raises(Conflict):
            story.fork("main")
        assert len(story.stored()) == before

    @pytest.mark.parametrize("at", [5, 1000, -1])
    def test_a_version_outside_the_branch_is_invalid(self, story: Story, at: int) -> None:
        before = len(story.stored())
        with pytest.raises(InvalidCommand) as refused:
            story.fork("alt", at=at)
        assert "at_version" in refused.value.errors
        assert len(story.stored()) == before

    def test_an_unknown_source_is_invalid(self, story: Story) -> None:
        with pytest.raises(InvalidCommand) as refused:
            story.fork("alt", source="nope")
        assert "from" in refused.value.errors


class TestComparing:
    def test_lists_exactly_the_changed_entities_and_names_the_common_ancestor(
        self, story: Story
    ) -> None:
        story.fork("alt", at=3)  # before te1
        story.update("main", "locations", "l1", name="Main keep")  # main v5
        story.add("alt", "elements", "e2", name="Spy", kind="character")  # alt v4
        story.remove("alt", "elements", "e1")  # alt v5
        comparison = story.compare("main", "alt")
        assert comparison["base"] == "main@5"
        assert comparison["head"] == "alt@5"
        assert comparison["ancestor"] == {"branch": "main", "version": 3}
        assert changed_ids(comparison) == {
            "l1": "modified",
            "e1": "removed",
            "e2": "added",
            "te1": "removed",
        }
        (keep,) = [c for c in comparison["changes"] if c["entity_id"] == "l1"]
        assert keep["collection"] == "locations"
        assert keep["fields"] == {"name": {"base": "Main keep", "head": "Keep"}}

    def test_a_branch_compared_with_itself_has_no_changes(self, story: Story) -> None:
        assert story.compare("main", "main")["changes"] == []

    def test_versions_can_be_named(self, story: Story) -> None:
        story.update("main", "locations", "l1", name="Renamed")  # v5
        comparison = story.compare("main@4", "main")
        assert comparison["base"] == "main@4"
        assert comparison["ancestor"] == {"branch": "main", "version": 4}
        assert changed_ids(comparison) == {"l1": "modified"}
        assert changed_ids(story.compare("main@2", "main@3")) == {"e1": "added"}

    def test_a_fork_at_a_version_below_its_fork_point_is_its_parents_state(
        self, story: Story
    ) -> None:
        story.fork("alt", at=3)
        story.add("alt", "elements", "e2", name="Spy", kind="character")
        assert story.compare("alt@1", "main@1")["changes"] == []
        assert changed_ids(story.compare("alt@2", "alt")) == {"e1": "added", "e2": "added"}

    @pytest.mark.parametrize(
        ("base", "head"),
        [("nope", "main"), ("main", "main@99"), ("main@x", "main"), ("bad name", "main")],
    )
    def test_unknown_branches_versions_and_bad_refs_are_invalid(
        self, story: Story, base: str, head: str
    ) -> None:
        with pytest.raises(InvalidCommand):
            story.compare(base, head)


@pytest.fixture
def diverged(story: Story) -> Story:
    """alt forked at main@4; main renamed l1; alt changed l1's kind and metadata, added e2."""
    story.fork("alt")
    story.update("main", "locations", "l1", name="Main keep")
    story.update("alt", "locations", "l1", kind="fortress", metadata={"gate": "north"})
    story.add("alt", "elements", "e2", name="Spy", kind="character")
    story.update("alt", "elements", "e1", tags=["night", "day"])
    return story


class TestMergingCleanly:
    def test_applies_the_sources_changes_as_ordinary_events_and_a_merge_marker(
        self, diverged: Story
    ) -> None:
        before = len(diverged.stored())
        merged = diverged.merge("main", "alt")
        assert diverged.entity("main", "locations", "l1") | {"version": 0} == {
            "id": "l1",
            "version": 0,
            "name": "Main keep",
            "kind": "fortress",
            "description": None,
            "parent_id": None,
            "metadata": {"walls": 2, "gate": "north"},
        }
        assert diverged.entity("main", "elements", "e2")["name"] == "Spy"
        assert diverged.entity("main", "elements", "e1")["tags"] == ["night", "day"]
        types = diverged.stored_types(before)
        assert types[-1] == "BranchMerged"
        assert sorted(types[:-1]) == ["ElementAdded", "ElementUpdated", "LocationUpdated"]
        assert merged.resource["events"] == 3
        assert merged.resource["ancestor"] == {"branch": "main", "version": 4}
        assert merged.resource["head_version"] == diverged.head("main") == merged.version
        assert sorted((e["entity_id"], e["change"]) for e in merged.resource["edits"]) == [
            ("e1", "modified"),
            ("e2", "added"),
            ("l1", "modified"),
        ]

    def test_leaves_the_source_alone(self, diverged: Story) -> None:
        before = diverged.content("alt")
        diverged.merge("main", "alt")
        assert diverged.content("alt") == before

    def test_a_second_merge_without_new_changes_applies_nothing_new(self, diverged: Story) -> None:
        diverged.merge("main", "alt")
        content = diverged.content("main")
        again = diverged.merge("main", "alt")
        assert again.resource["edits"] == []
        assert again.resource["events"] == 0
        assert diverged.content("main") == content

    def test_the_parents_changes_can_be_merged_into_the_fork(self, diverged: Story) -> None:
        merged = diverged.merge("alt", "main")
        assert merged.resource["ancestor"] == {"branch": "main", "version": 4}
        l1 = diverged.entity("alt", "locations", "l1")
        assert (l1["name"], l1["kind"]) == ("Main keep", "fortress")

    def test_a_merge_makes_the_branches_compare_equal_when_only_one_side_changed(
        self, story: Story
    ) -> None:
        story.fork("alt")
        story.update("alt", "locations", "l1", name="Alt keep", metadata={"walls": None})
        story.remove("alt", "timeline_events", "te1")
        story.remove("alt", "elements", "e1")
        story.merge("main", "alt")
        assert story.compare("main", "alt")["changes"] == []


class TestMergeConflicts:
    def test_lists_every_conflict_and_records_nothing_not_even_the_clean_part(
        self, diverged: Story
    ) -> None:
        diverged.update("main", "locations", "l1", kind="tower", metadata={"gate": "south"})
        diverged.update("alt", "locations", "l1", name="Alt keep")
        before = len(diverged.stored())
        main_before = diverged.content("main")
        with pytest.raises(MergeConflict) as refused:
            diverged.merge("main", "alt")
        conflicts = refused.value.conflicts
        assert sorted((c["entity_id"], c["field"]) for c in conflicts) == [
            ("l1", "kind"),
            ("l1", "metadata.gate"),
            ("l1", "name"),
        ]
        (name,) = [c for c in conflicts if c["field"] == "name"]
        assert (name["base"], name["ours"], name["theirs"]) == ("Keep", "Main keep", "Alt keep")
        assert len(diverged.stored()) == before
        assert diverged.content("main") == main_before
        assert "e2" not in diverged.content("main")["elements"]

    def test_a_change_against_a_removal_is_a_conflict(self, story: Story) -> None:
        story.fork("alt")
        story.update("main", "elements", "e1", name="Captain")
        story.remove("alt", "timeline_events", "te1")
        story.remove("alt", "elements", "e1")
        before = len(story.stored())
        with pytest.raises(MergeConflict) as refused:
            story.merge("main", "alt")
        assert [c["entity_id"] for c in refused.value.conflicts] == ["e1"]
        assert len(story.stored()) == before
        assert "te1" in story.content("main")["timeline_events"]

    def test_a_merge_that_would_break_an_invariant_is_refused_and_records_nothing(
        self, story: Story
    ) -> None:
        story.fork("alt")
        story.add(
            "alt",
            "timeline_events",
            "te2",
            timeline_id="t1",
            title="Ambush",
            start={"year": 13},
            element_ids=["e1"],
        )
        story.remove("main", "timeline_events", "te1")
        story.remove("main", "elements", "e1")
        before = len(story.stored())
        with pytest.raises(MergeConflict):
            story.merge("main", "alt")
        assert len(story.stored()) == before
        assert "te2" not in story.content("main")["timeline_events"]

    def test_a_refused_dry_run_is_refused_the_same_way(self, diverged: Story) -> None:
        diverged.update("alt", "locations", "l1", name="Alt keep")
        with pytest.raises(MergeConflict) as refused:
            diverged.merge("main", "alt", dry_run=True)
        assert [c["field"] for c in refused.value.conflicts] == ["name"]


class TestDryRun:
    def test_records_nothing_but_returns_the_edits(self, diverged: Story) -> None:
        before = len(diverged.stored())
        main_before = diverged.content("main")
        dry = diverged.merge("main", "alt", dry_run=True)
        assert dry.resource["dry_run"] is True
        assert sorted((e["entity_id"], e["change"]) for e in dry.resource["edits"]) == [
            ("e1", "modified"),
            ("e2", "added"),
            ("l1", "modified"),
        ]
        assert dry.position is None
        assert len(diverged.stored()) == before
        assert diverged.content("main") == main_before

    def test_answers_the_targets_unchanged_head_version(self, diverged: Story) -> None:
        head = diverged.head("main")
        dry = diverged.merge("main", "alt", dry_run=True)
        assert dry.resource["head_version"] == head
        assert diverged.head("main") == head

    def test_a_real_merge_after_a_dry_run_applies_the_same_edits(self, diverged: Story) -> None:
        dry = diverged.merge("main", "alt", dry_run=True)
        real = diverged.merge("main", "alt")
        assert real.resource["edits"] == dry.resource["edits"]


class TestTheLastMergeIsTheNewAncestor:
    def test_edits_of_the_same_field_on_the_source_only_merge_cleanly(self, story: Story) -> None:
        story.fork("alt")
        story.update("alt", "locations", "l1", name="A")
        story.merge("main", "alt")
        story.update("alt", "locations", "l1", name="B")
        merged = story.merge("main", "alt")
        assert merged.resource["ancestor"]["branch"] == "alt"
        assert story.entity("main", "locations", "l1")["name"] == "B"

    def test_an_edit_on_the_target_after_the_merge_is_kept(self, story: Story) -> None:
        story.fork("alt")
        story.update("alt", "locations", "l1", name="A")
        story.merge("main", "alt")
        story.update("main", "locations", "l1", name="Main")
        story.add("alt", "elements", "e2", name="Spy", kind="character")
        story.merge("main", "alt")
        assert story.entity("main", "locations", "l1")["name"] == "Main"
        assert "e2" in story.content("main")["elements"]

    def test_merging_back_and_forth_uses_the_latest_merge(self, story: Story) -> None:
        story.fork("alt")
        story.update("alt", "locations", "l1", kind="fortress")
        story.merge("main", "alt")  # main takes alt's kind
        story.update("main", "locations", "l1", name="A")
        story.merge("alt", "main")  # alt takes main's name A: the latest common point
        story.update("main", "locations", "l1", name="B")  # only main changes it since
        merged = story.merge("main", "alt")  # alt has nothing new about the name
        assert merged.resource["edits"] == []
        assert story.entity("main", "locations", "l1")["name"] == "B"


class TestMergeRefusals:
    def test_a_branch_cannot_be_merged_into_itself(self, story: Story) -> None:
        with pytest.raises(InvalidCommand) as refused:
            story.merge("main", "main")
        assert "source" in refused.value.errors

    def test_an_unknown_source_is_invalid(self, story: Story) -> None:
        with pytest.raises(InvalidCommand) as refused:
            story.merge("main", "nope")
        assert "source" in refused.value.errors


HEAD_OF_EDITED = 15  # two of its updates record two events each


@pytest.fixture
def edited(story: Story) -> Story:
    """After main@4: renames, a metadata patch, a nested location, removals and re-linking."""
    story.update("main", "locations", "l1", name="High keep", metadata={"walls": 3, "moat": 1})
    story.add("main", "locations", "l2", name="Tower", kind="tower", parent_id="l1")
    story.add("main", "elements", "e2", name="Spy", kind="character")
    story.update("main", "timeline_events", "te1", element_ids=["e1", "e2"], location_id="l2")
    story.update("main", "timeline_events", "te1", start={"year": 14}, title="Late watch")
    story.update("main", "elements", "e1", tags=["day"])
    story.add("main", "timelines", "t2", name="Days")
    story.update("main", "timeline_events", "te1", timeline_id="t2")
    story.remove("main", "timelines", "t1")
    assert story.head("main") == HEAD_OF_EDITED
    return story


class TestReverting:
    @pytest.mark.parametrize("to_version", [0, 2, 4, 7, 11, 14])
    def test_restores_exactly_the_state_at_that_version(
        self, edited: Story, to_version: int
    ) -> None:
        edited.revert("main", to_version)
        assert edited.content("main") == edited.content("main", to_version)
        assert edited.compare(f"main@{to_version}", "main")["changes"] == []

    def test_appends_compensating_events_and_a_revert_marker_and_deletes_nothing(
        self, edited: Story
    ) -> None:
        before = edited.stored()
        history = edited.content("main", 7)
        reverted = edited.revert("main", 4)
        after = edited.stored()
        assert [(n.originator_id, n.originator_version) for n in after[: len(before)]] == [
            (n.originator_id, n.originator_version) for n in before
        ]
        assert len(after) > len(before)
        assert edited.stored_types(len(before))[-1] == "BranchReverted"
        assert reverted.resource["reverted_to"] == 4
        assert reverted.resource["events"] == len(after) - len(before) - 1
        appended = len(after) - len(before)
        assert reverted.resource["head_version"] == edited.head("main") == HEAD_OF_EDITED + appended
        assert edited.content("main", 7) == history  # history is never rewritten

    def test_reverting_the_revert_brings_the_edits_back(self, edited: Story) -> None:
        head = edited.head("main")
        edited.revert("main", 4)
        edited.revert("main", head)
        assert edited.content("main") == edited.content("main", head)

    def test_reverting_to_the_head_changes_nothing(self, edited: Story) -> None:
        before = len(edited.stored())
        reverted = edited.revert("main", HEAD_OF_EDITED)
        assert reverted.resource["events"] == 0
        assert reverted.resource["head_version"] == HEAD_OF_EDITED
        assert len(edited.stored()) == before

    def test_restores_the_order_of_linked_elements(self, story: Story) -> None:
        story.add("main", "elements", "e2", name="Spy", kind="character")
        story.update("main", "timeline_events", "te1", element_ids=["e1", "e2"])  # v6
        story.update("main", "timeline_events", "te1", element_ids=["e2"])
        story.revert("main", 6)
        assert story.entity("main", "timeline_events", "te1")["element_ids"] == ["e1", "e2"]
        assert story.compare("main@6", "main")["changes"] == []

    def test_a_fork_reverted_before_its_fork_point_has_its_parents_state_there(
        self, story: Story
    ) -> None:
        story.fork("alt", at=3)
        story.update("alt", "locations", "l1", name="Alt keep")
        story.add("alt", "elements", "e2", name="Spy", kind="character")
        reverted = story.revert("alt", 1)
        assert story.content("alt") == story.content("main", 1)
        assert reverted.resource["forked_from"] == {"branch": "main", "version": 3}
        assert story.head("alt") > 5  # versions only grow
        assert story.content("main")["locations"]["l1"] is not None  # the parent is untouched
        assert set(story.content("main")["elements"]) == {"e1"}

    @pytest.mark.parametrize("to_version", [-1, 5, 100])
    def test_a_version_outside_the_branch_is_invalid(self, story: Story, to_version: int) -> None:
        before = len(story.stored())
        with pytest.raises(InvalidCommand) as refused:
            story.revert("main", to_version)
        assert "to_version" in refused.value.errors
        assert len(story.stored()) == before


def test_the_head_of_a_branch_is_read_from_two_events_and_agrees_with_its_state(
    story: Story,
) -> None:
    story.fork("alt")
    story.add("alt", "elements", "e9", kind="character", name="Scout")
    story.fork("alt-2", source="alt", at=5)
    story.add("alt-2", "elements", "e10", kind="character", name="Spy")
    story.add("main", "elements", "e11", kind="character", name="Smith")
    for name in ("main", "alt", "alt-2"):
        stream = branch_id(story.world_id, name)
        assert head_of(story.app, stream) == story.app.load_branch(stream).head_version, name
    with pytest.raises(NotFound):
        head_of(story.app, uuid4())


def test_a_fork_does_not_load_the_state_of_its_source(
    story: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the source branch was loaded")

    monkeypatch.setattr(story.app, "load_branch", refuse)
    forked = story.fork("light", at=2)
    assert forked.resource["head_version"] == 2 and forked.resource["forked_from"] == {
        "branch": "main",
        "version": 2,
    }
    with pytest.raises(InvalidCommand):
        story.fork("too-far", at=99)
