"""The Branch aggregate: content operations, their events and every invariant."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any
from uuid import uuid4

import pytest

from commands import branch_events as ev
from commands.branch import Branch
from commands.chain import GENESIS_HASH
from commands.chained import ChainedAggregate
from commands.dates import Calendar
from commands.errors import Conflict, InvalidCommand, NotFound, StaleVersion
from commands.validation import MAX_METADATA_BYTES

START = {"year": 3001, "month": 9, "day": 22}


def pending(aggregate: ChainedAggregate) -> list[Any]:
    """Collect the events `aggregate` has triggered and not yet handed over."""
    return list(aggregate.collect_events())


def types(events: Sequence[Any]) -> list[str]:
    """The class names of `events`, in order."""
    return [type(e).__name__ for e in events]


def errors_of(action: Callable[[], Any]) -> dict[str, list[str]]:
    """Run `action`, which must be refused as invalid, and return its per-field errors."""
    with pytest.raises(InvalidCommand) as refused:
        action()
    return refused.value.errors


def metadata_of_size(size: int) -> dict[str, str]:
    """A metadata object whose compact JSON is exactly `size` bytes."""
    overhead = len('{"k":""}')
    return {"k": "x" * (size - overhead)}


@pytest.fixture
def furnished(branch: Branch, calendar: Calendar) -> Branch:
    """A branch with timeline t1, locations l1 > l2, elements e1, e2 and event te1 (t1, l1, e1)."""
    branch.add_timeline("t1", {"name": "The War"})
    branch.add_location("l1", {"name": "Arda", "kind": "planet"})
    branch.add_location("l2", {"name": "Gondor", "kind": "realm", "parent_id": "l1"})
    branch.add_element("e1", {"kind": "character", "name": "Aragorn"})
    branch.add_element("e2", {"kind": "artifact", "name": "Anduril"})
    branch.add_timeline_event(
        "te1",
        {
            "timeline_id": "t1",
            "title": "Coronation",
            "start": START,
            "location_id": "l1",
            "element_ids": ["e1"],
            "metadata": {"weather": "sunny", "guests": {"hobbits": 4}},
        },
        calendar,
    )
    pending(branch)
    return branch


class TestStartingABranch:
    def test_main_starts_at_version_zero_and_empty(self) -> None:
        branch = Branch.start(uuid4(), world_id=uuid4(), name="main")
        assert branch.head_version == 0
        assert branch.name == "main"
        assert branch.forked_from is None
        assert branch.entities == {
            "locations": {},
            "elements": {},
            "timelines": {},
            "timeline_events": {},
        }
        assert types(pending(branch)) == ["BranchStarted"]

    def test_each_event_adds_one_to_the_head_version(self, branch: Branch) -> None:
        branch.add_timeline("t1", {"name": "One"})
        assert branch.head_version == 1
        branch.add_timeline("t2", {"name": "Two"})
        branch.update_timeline("t1", {"name": "Uno"}, None)
        assert branch.head_version == 3

    def test_a_fork_starts_at_its_fork_point(self) -> None:
        parent_hash = "a" * 64
        fork = Branch._start(
            ev.BranchForked,
            id=uuid4(),
            prev_hash=parent_hash,
            world_id=str(uuid4()),
            name="what-if",
            parent_branch_id=str(uuid4()),
            parent_branch="main",
            at_version=5,
            parent_hash=parent_hash,
        )
        assert fork.head_version == 5
        assert fork.forked_from == {"branch": "main", "version": 5}
        added = fork.add_timeline("t1", {"name": "Alt"})
        assert added["version"] == 6
        assert fork.head_version == 6


class TestGettingAnEntity:
    def test_returns_the_entity(self, furnished: Branch) -> None:
        assert furnished.get("locations", "l1")["name"] == "Arda"

    def test_unknown_entity_is_not_found(self, furnished: Branch) -> None:
        with pytest.raises(NotFound):
            furnished.get("elements", "nope")

    def test_a_stale_expected_version_is_refused(self, furnished: Branch) -> None:
        current = furnished.get("locations", "l1")["version"]
        with pytest.raises(StaleVersion) as refused:
            furnished.get("locations", "l1", expected_version=current + 1)
        assert (refused.value.expected, refused.value.actual) == (current + 1, current)

    def test_a_matching_expected_version_is_accepted(self, furnished: Branch) -> None:
        current = furnished.get("locations", "l1")["version"]
        assert furnished.get("locations", "l1", expected_version=current)["id"] == "l1"


class TestAddingALocation:
    def test_adds_it_with_defaults(self, branch: Branch) -> None:
        added = branch.add_location("l1", {"name": "Arda", "kind": "planet"})
        assert added == {
            "id": "l1",
            "name": "Arda",
            "kind": "planet",
            "description": None,
            "parent_id": None,
            "metadata": {},
            "version": 1,
        }
        (event,) = pending(branch)
        assert type(event).__name__ == "LocationAdded"
        assert event.entity_id == "l1"
        assert event.collection == "locations"

    def test_adds_it_under_a_parent(self, branch: Branch) -> None:
        branch.add_location("l1", {"name": "Arda", "kind": "planet"})
        child = branch.add_location("l2", {"name": "Gondor", "kind": "realm", "parent_id": "l1"})
        assert child["parent_id"] == "l1"

    def test_refuses_an_unknown_parent_keyed_by_parent_id(self, branch: Branch) -> None:
        errors = errors_of(
            lambda: branch.add_location("l1", {"name": "A", "kind": "k", "parent_id": "ghost"})
        )
        assert list(errors) == ["parent_id"]
        assert branch.entities["locations"] == {}
        assert pending(branch) == []

    def test_refuses_itself_as_parent(self, branch: Branch) -> None:
        errors = errors_of(
            lambda: branch.add_location("l1", {"name": "A", "kind": "k", "parent_id": "l1"})
        )
        assert list(errors) == ["parent_id"]

    def test_refuses_a_duplicate_id(self, furnished: Branch) -> None:
        with pytest.raises(Conflict):
            furnished.add_location("l1", {"name": "Again", "kind": "planet"})
        assert furnished.get("locations", "l1")["name"] == "Arda"

    @pytest.mark.parametrize("name", ["", "   ", "x" * 201, None, 42])
    def test_refuses_a_bad_name(self, branch: Branch, name: Any) -> None:
        errors = errors_of(lambda: branch.add_location("l1", {"name": name, "kind": "k"}))
        assert list(errors) == ["name"]

    def test_accepts_names_of_one_and_two_hundred_characters(self, branch: Branch) -> None:
        assert branch.add_location("l1", {"name": "x", "kind": "k"})["name"] == "x"
        assert branch.add_location("l2", {"name": "y" * 200, "kind": "k"})["name"] == "y" * 200

    def test_refuses_a_missing_kind(self, branch: Branch) -> None:
        assert list(errors_of(lambda: branch.add_location("l1", {"name": "A"}))) == ["kind"]

    @pytest.mark.parametrize("metadata", [None, [], "text", 3])
    def test_refuses_metadata_that_is_not_an_object(self, branch: Branch, metadata: Any) -> None:
        errors = errors_of(
            lambda: branch.add_location("l1", {"name": "A", "kind": "k", "metadata": metadata})
        )
        assert list(errors) == ["metadata"]

    def test_accepts_metadata_of_exactly_64_kib(self, branch: Branch) -> None:
        metadata = metadata_of_size(MAX_METADATA_BYTES)
        added = branch.add_location("l1", {"name": "A", "kind": "k", "metadata": metadata})
        assert added["metadata"] == metadata

    def test_refuses_metadata_over_64_kib(self, branch: Branch) -> None:
        metadata = metadata_of_size(MAX_METADATA_BYTES + 1)
        errors = errors_of(
            lambda: branch.add_location("l1", {"name": "A", "kind": "k", "metadata": metadata})
        )
        assert list(errors) == ["metadata"]

    def test_counts_metadata_size_in_utf8_bytes(self, branch: Branch) -> None:
        metadata = {"k": "\u00e9" * (MAX_METADATA_BYTES // 2)}
        errors = errors_of(
            lambda: branch.add_location("l1", {"name": "A", "kind": "k", "metadata": metadata})
        )
        assert list(errors) == ["metadata"]


class TestUpdatingALocation:
    def test_records_only_the_changed_fields(self, furnished: Branch) -> None:
        furnished.update_location("l1", {"name": "Middle-earth", "kind": "planet"}, None)
        (event,) = pending(furnished)
        assert type(event).__name__ == "LocationUpdated"
        assert event.changes == {"name": "Middle-earth"}
        assert furnished.get("locations", "l1")["name"] == "Middle-earth"

    def test_a_patch_that_changes_nothing_records_nothing(self, furnished: Branch) -> None:
        version = furnished.head_version
        furnished.update_location(
            "l2", {"name": "Gondor", "kind": "realm", "parent_id": "l1", "metadata": {}}, None
        )
        assert pending(furnished) == []
        assert furnished.head_version == version

    def test_an_empty_patch_records_nothing(self, furnished: Branch) -> None:
        furnished.update_location("l1", {}, None)
        assert pending(furnished) == []

    def test_null_clears_the_description(self, furnished: Branch) -> None:
        furnished.update_location("l1", {"description": "Round"}, None)
        furnished.update_location("l1", {"description": None}, None)
        assert furnished.get("locations", "l1")["description"] is None
        events = pending(furnished)
        assert [e.changes for e in events] == [{"description": "Round"}, {"description": None}]

    def test_refuses_null_for_a_required_field(self, furnished: Branch) -> None:
        assert list(errors_of(lambda: furnished.update_location("l1", {"name": None}, None))) == [
            "name"
        ]
        assert list(errors_of(lambda: furnished.update_location("l1", {"kind": ""}, None))) == [
            "kind"
        ]

    def test_metadata_is_a_merge_patch(self, furnished: Branch) -> None:
        furnished.update_location("l1", {"metadata": {"climate": "mild", "moons": 1}}, None)
        furnished.update_location("l1", {"metadata": {"moons": None, "age": 7000}}, None)
        assert furnished.get("locations", "l1")["metadata"] == {"climate": "mild", "age": 7000}
        events = pending(furnished)
        assert events[-1].changes == {"metadata": {"moons": None, "age": 7000}}

    def test_a_metadata_patch_that_changes_nothing_records_nothing(self, furnished: Branch) -> None:
        furnished.update_location("l1", {"metadata": {"gone": None}}, None)
        assert pending(furnished) == []

    def test_refuses_a_metadata_patch_that_is_not_an_object(self, furnished: Branch) -> None:
        errors = errors_of(lambda: furnished.update_location("l1", {"metadata": [1]}, None))
        assert list(errors) == ["metadata"]

    def test_refuses_a_merge_patch_that_grows_metadata_over_64_kib(self, furnished: Branch) -> None:
        half = {"a": "x" * (MAX_METADATA_BYTES // 2)}
        furnished.update_location("l1", {"metadata": half}, None)
        pending(furnished)
        errors = errors_of(
            lambda: furnished.update_location(
                "l1", {"metadata": {"b": "y" * (MAX_METADATA_BYTES // 2)}}, None
            )
        )
        assert list(errors) == ["metadata"]
        assert furnished.get("locations", "l1")["metadata"] == half
        assert pending(furnished) == []

    def test_sets_the_entity_version_to_the_branch_version(self, furnished: Branch) -> None:
        updated = furnished.update_location("l1", {"kind": "world"}, None)
        assert updated["version"] == furnished.head_version

    def test_refuses_a_stale_expected_version(self, furnished: Branch) -> None:
        version = furnished.get("locations", "l1")["version"]
        with pytest.raises(StaleVersion):
            furnished.update_location("l1", {"name": "X"}, version - 1)
        assert pending(furnished) == []

    def test_accepts_the_current_expected_version(self, furnished: Branch) -> None:
        version = furnished.get("locations", "l1")["version"]
        assert furnished.update_location("l1", {"name": "X"}, version)["name"] == "X"

    def test_unknown_location_is_not_found(self, furnished: Branch) -> None:
        with pytest.raises(NotFound):
            furnished.update_location("ghost", {"name": "X"}, None)


class TestMovingALocation:
    def test_records_a_move(self, furnished: Branch) -> None:
        furnished.add_location("l3", {"name": "Rohan", "kind": "realm"})
        pending(furnished)
        furnished.update_location("l3", {"parent_id": "l1"}, None)
        (event,) = pending(furnished)
        assert type(event).__name__ == "LocationMoved"
        assert event.parent_id == "l1"
        assert furnished.get("locations", "l3")["parent_id"] == "l1"

    def test_null_parent_makes_it_a_root(self, furnished: Branch) -> None:
        furnished.update_location("l2", {"parent_id": None}, None)
        (event,) = pending(furnished)
        assert type(event).__name__ == "LocationMoved"
        assert event.parent_id is None
        assert furnished.get("locations", "l2")["parent_id"] is None

    def test_records_a_rename_and_a_move_as_two_events(self, furnished: Branch) -> None:
        furnished.update_location("l2", {"name": "Ondor", "parent_id": None}, None)
        assert types(pending(furnished)) == ["LocationUpdated", "LocationMoved"]

    def test_refuses_an_unknown_parent(self, furnished: Branch) -> None:
        errors = errors_of(lambda: furnished.update_location("l2", {"parent_id": "ghost"}, None))
        assert list(errors) == ["parent_id"]
        assert furnished.get("locations", "l2")["parent_id"] == "l1"

    def test_refuses_a_parent_id_that_is_not_a_string(self, furnished: Branch) -> None:
        errors = errors_of(lambda: furnished.update_location("l2", {"parent_id": 7}, None))
        assert list(errors) == ["parent_id"]

    def test_refuses_a_location_as_its_own_parent(self, furnished: Branch) -> None:
        errors = errors_of(lambda: furnished.update_location("l1", {"parent_id": "l1"}, None))
        assert list(errors) == ["parent_id"]
        assert "cycle" in errors["parent_id"][0]

    def test_refuses_a_location_cycle_through_its_child(self, furnished: Branch) -> None:
        errors = errors_of(lambda: furnished.update_location("l1", {"parent_id": "l2"}, None))
        assert list(errors) == ["parent_id"]
        assert furnished.get("locations", "l1")["parent_id"] is None
        assert pending(furnished) == []

    def test_refuses_a_location_cycle_through_a_deeper_descendant(self, furnished: Branch) -> None:
        furnished.add_location("l3", {"name": "Minas Tirith", "kind": "city", "parent_id": "l2"})
        furnished.add_location("l4", {"name": "Citadel", "kind": "fort", "parent_id": "l3"})
        pending(furnished)
        errors = errors_of(lambda: furnished.update_location("l1", {"parent_id": "l4"}, None))
        assert list(errors) == ["parent_id"]
        assert pending(furnished) == []

    def test_allows_moving_under_a_sibling_branch_of_the_tree(self, furnished: Branch) -> None:
        furnished.add_location("l3", {"name": "Rohan", "kind": "realm", "parent_id": "l1"})
        furnished.update_location("l3", {"parent_id": "l2"}, None)
        assert furnished.get("locations", "l3")["parent_id"] == "l2"

    def test_moving_to_the_same_parent_records_nothing(self, furnished: Branch) -> None:
        furnished.update_location("l2", {"parent_id": "l1"}, None)
        assert pending(furnished) == []

    def test_a_refused_move_changes_nothing_else_either(self, furnished: Branch) -> None:
        """A PATCH is all or nothing: a bad parent_id must not let the rename through."""
        with pytest.raises(InvalidCommand):
            furnished.update_location("l2", {"name": "Ondor", "parent_id": "ghost"}, None)
        assert furnished.get("locations", "l2")["name"] == "Gondor"
        assert pending(furnished) == []


class TestRemovingALocation:
    def test_removes_an_unreferenced_location(self, furnished: Branch) -> None:
        furnished.add_location("l3", {"name": "Rohan", "kind": "realm"})
        pending(furnished)
        furnished.remove_location("l3", None, cascade=False)
        assert "l3" not in furnished.entities["locations"]
        assert types(pending(furnished)) == ["LocationRemoved"]

    def test_refuses_while_it_has_children_or_events(self, furnished: Branch) -> None:
        with pytest.raises(Conflict) as refused:
            furnished.remove_location("l1", None, cascade=False)
        assert refused.value.references == [
            {"collection": "locations", "id": "l2"},
            {"collection": "timeline_events", "id": "te1"},
        ]
        assert "l1" in furnished.entities["locations"]
        assert pending(furnished) == []

    def test_refuses_while_a_timeline_event_is_there(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        furnished.update_location("l2", {"parent_id": None}, None)
        furnished.update_timeline_event("te1", {"location_id": "l2"}, None, calendar)
        with pytest.raises(Conflict) as refused:
            furnished.remove_location("l2", None, cascade=False)
        assert refused.value.references == [{"collection": "timeline_events", "id": "te1"}]

    def test_cascade_removes_children_and_clears_events_explicitly(self, furnished: Branch) -> None:
        furnished.remove_location("l1", None, cascade=True)
        events = pending(furnished)
        assert Counter(types(events)) == Counter({"LocationRemoved": 2, "TimelineEventUpdated": 1})
        (cleared,) = [e for e in events if type(e).__name__ == "TimelineEventUpdated"]
        assert (cleared.entity_id, cleared.changes) == ("te1", {"location_id": None})
        assert {e.entity_id for e in events if type(e).__name__ == "LocationRemoved"} == {
            "l1",
            "l2",
        }
        assert furnished.entities["locations"] == {}
        assert furnished.get("timeline_events", "te1")["location_id"] is None

    def test_cascade_reaches_grandchildren_and_their_events(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        furnished.add_location("l3", {"name": "Minas Tirith", "kind": "city", "parent_id": "l2"})
        furnished.add_timeline_event(
            "te2",
            {"timeline_id": "t1", "title": "Siege", "start": START, "location_id": "l3"},
            calendar,
        )
        pending(furnished)
        furnished.remove_location("l1", None, cascade=True)
        events = pending(furnished)
        assert Counter(types(events)) == Counter({"LocationRemoved": 3, "TimelineEventUpdated": 2})
        assert furnished.get("timeline_events", "te2")["location_id"] is None
        assert furnished.entities["locations"] == {}

    def test_refuses_a_stale_expected_version(self, furnished: Branch) -> None:
        with pytest.raises(StaleVersion):
            furnished.remove_location("l2", 0, cascade=False)
        assert "l2" in furnished.entities["locations"]

    def test_unknown_location_is_not_found(self, furnished: Branch) -> None:
        with pytest.raises(NotFound):
            furnished.remove_location("ghost", None, cascade=True)


class TestAddingAnElement:
    def test_adds_it_with_defaults(self, branch: Branch) -> None:
        added = branch.add_element("e1", {"kind": "character", "name": "Frodo"})
        assert added == {
            "id": "e1",
            "kind": "character",
            "name": "Frodo",
            "summary": None,
            "tags": [],
            "metadata": {},
            "version": 1,
        }
        assert types(pending(branch)) == ["ElementAdded"]

    def test_deduplicates_tags_keeping_their_order(self, branch: Branch) -> None:
        added = branch.add_element("e1", {"kind": "c", "name": "F", "tags": ["b", "a", "b"]})
        assert added["tags"] == ["b", "a"]

    @pytest.mark.parametrize(
        "tags", ["hobbit", [1], [""], ["x" * 201], [f"t{i}" for i in range(101)], None]
    )
    def test_refuses_bad_tags(self, branch: Branch, tags: Any) -> None:
        errors = errors_of(
            lambda: branch.add_element("e1", {"kind": "c", "name": "F", "tags": tags})
        )
        assert list(errors) == ["tags"]

    def test_refuses_a_missing_kind(self, branch: Branch) -> None:
        assert list(errors_of(lambda: branch.add_element("e1", {"name": "F"}))) == ["kind"]

    def test_refuses_a_name_over_200_characters(self, branch: Branch) -> None:
        errors = errors_of(lambda: branch.add_element("e1", {"kind": "c", "name": "n" * 201}))
        assert list(errors) == ["name"]

    def test_refuses_a_summary_that_is_not_text(self, branch: Branch) -> None:
        errors = errors_of(
            lambda: branch.add_element("e1", {"kind": "c", "name": "F", "summary": ["x"]})
        )
        assert list(errors) == ["summary"]

    def test_refuses_a_duplicate_id(self, furnished: Branch) -> None:
        with pytest.raises(Conflict):
            furnished.add_element("e1", {"kind": "c", "name": "Other"})


class TestUpdatingAnElement:
    def test_records_only_the_changed_fields(self, furnished: Branch) -> None:
        furnished.update_element(
            "e1", {"kind": "character", "name": "Elessar", "tags": ["king"]}, None
        )
        (event,) = pending(furnished)
        assert type(event).__name__ == "ElementUpdated"
        assert event.changes == {"name": "Elessar", "tags": ["king"]}

    def test_a_patch_that_changes_nothing_records_nothing(self, furnished: Branch) -> None:
        furnished.update_element("e1", {"kind": "character", "tags": []}, None)
        assert pending(furnished) == []

    def test_null_clears_the_summary(self, furnished: Branch) -> None:
        furnished.update_element("e1", {"summary": "Heir of Isildur"}, None)
        furnished.update_element("e1", {"summary": None}, None)
        assert furnished.get("elements", "e1")["summary"] is None

    def test_deduplicated_tags_that_equal_the_current_ones_record_nothing(
        self, furnished: Branch
    ) -> None:
        furnished.update_element("e1", {"tags": ["king", "ranger"]}, None)
        pending(furnished)
        furnished.update_element("e1", {"tags": ["king", "ranger", "king"]}, None)
        assert pending(furnished) == []

    def test_metadata_is_a_merge_patch(self, furnished: Branch) -> None:
        furnished.update_element("e1", {"metadata": {"age": 87, "titles": {"a": 1}}}, None)
        furnished.update_element("e1", {"metadata": {"titles": {"b": 2}}}, None)
        assert furnished.get("elements", "e1")["metadata"] == {
            "age": 87,
            "titles": {"a": 1, "b": 2},
        }

    def test_ignores_fields_an_element_does_not_have(self, furnished: Branch) -> None:
        furnished.update_element("e1", {"parent_id": "l1", "title": "x"}, None)
        assert pending(furnished) == []
        assert "parent_id" not in furnished.get("elements", "e1")

    def test_refuses_a_stale_expected_version(self, furnished: Branch) -> None:
        with pytest.raises(StaleVersion):
            furnished.update_element("e1", {"name": "X"}, 999)


class TestRemovingAnElement:
    def test_removes_an_unlinked_element(self, furnished: Branch) -> None:
        furnished.remove_element("e2", None, cascade=False)
        assert types(pending(furnished)) == ["ElementRemoved"]
        assert "e2" not in furnished.entities["elements"]

    def test_refuses_while_linked_from_a_timeline_event(self, furnished: Branch) -> None:
        with pytest.raises(Conflict) as refused:
            furnished.remove_element("e1", None, cascade=False)
        assert refused.value.references == [{"collection": "timeline_events", "id": "te1"}]
        assert "e1" in furnished.entities["elements"]
        assert pending(furnished) == []

    def test_cascade_unlinks_it_explicitly(self, furnished: Branch, calendar: Calendar) -> None:
        furnished.add_timeline_event(
            "te2",
            {"timeline_id": "t1", "title": "B", "start": START, "element_ids": ["e2", "e1"]},
            calendar,
        )
        pending(furnished)
        furnished.remove_element("e1", None, cascade=True)
        events = pending(furnished)
        assert types(events) == ["ElementsUnlinked", "ElementsUnlinked", "ElementRemoved"]
        assert {e.entity_id for e in events[:2]} == {"te1", "te2"}
        assert all(e.element_ids == ["e1"] for e in events[:2])
        assert furnished.get("timeline_events", "te1")["element_ids"] == []
        assert furnished.get("timeline_events", "te2")["element_ids"] == ["e2"]


class TestTimelines:
    def test_adds_a_timeline(self, branch: Branch) -> None:
        added = branch.add_timeline("t1", {"name": "The War", "description": "Long"})
        assert added == {"id": "t1", "name": "The War", "description": "Long", "version": 1}
        assert types(pending(branch)) == ["TimelineAdded"]

    def test_refuses_a_missing_name(self, branch: Branch) -> None:
        assert list(errors_of(lambda: branch.add_timeline("t1", {}))) == ["name"]

    def test_refuses_a_duplicate_id(self, furnished: Branch) -> None:
        with pytest.raises(Conflict):
            furnished.add_timeline("t1", {"name": "Again"})

    def test_updates_only_changed_fields(self, furnished: Branch) -> None:
        furnished.update_timeline("t1", {"name": "The War", "description": "Of the Ring"}, None)
        (event,) = pending(furnished)
        assert type(event).__name__ == "TimelineUpdated"
        assert event.changes == {"description": "Of the Ring"}

    def test_a_no_op_update_records_nothing(self, furnished: Branch) -> None:
        furnished.update_timeline("t1", {"name": "The War", "description": None}, None)
        assert pending(furnished) == []

    def test_removes_an_empty_timeline(self, furnished: Branch) -> None:
        furnished.add_timeline("t2", {"name": "Empty"})
        pending(furnished)
        furnished.remove_timeline("t2", None, cascade=False)
        assert types(pending(furnished)) == ["TimelineRemoved"]

    def test_refuses_to_remove_a_timeline_with_events(self, furnished: Branch) -> None:
        with pytest.raises(Conflict) as refused:
            furnished.remove_timeline("t1", None, cascade=False)
        assert refused.value.references == [{"collection": "timeline_events", "id": "te1"}]
        assert pending(furnished) == []

    def test_cascade_removes_its_events_explicitly(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        furnished.add_timeline_event(
            "te2", {"timeline_id": "t1", "title": "Later", "start": {"year": 3019}}, calendar
        )
        pending(furnished)
        furnished.remove_timeline("t1", None, cascade=True)
        events = pending(furnished)
        assert types(events) == ["TimelineEventRemoved", "TimelineEventRemoved", "TimelineRemoved"]
        assert [e.entity_id for e in events] == ["te1", "te2", "t1"]
        assert furnished.entities["timeline_events"] == {}
        assert furnished.entities["timelines"] == {}

    def test_refuses_a_stale_expected_version_on_removal(self, furnished: Branch) -> None:
        with pytest.raises(StaleVersion):
            furnished.remove_timeline("t1", 999, cascade=True)
        assert "t1" in furnished.entities["timelines"]


class TestAddingATimelineEvent:
    def test_adds_it_with_canonical_dates_and_defaults(
        self, branch: Branch, calendar: Calendar
    ) -> None:
        branch.add_timeline("t1", {"name": "T"})
        added = branch.add_timeline_event(
            "te1",
            {"timeline_id": "t1", "title": "Dawn", "start": {"year": -130, "month": None}},
            calendar,
        )
        assert added == {
            "id": "te1",
            "timeline_id": "t1",
            "title": "Dawn",
            "description": None,
            "start": {"year": -130},
            "end": None,
            "location_id": None,
            "element_ids": [],
            "metadata": {},
            "version": 2,
        }

    def test_links_elements_once_each(self, furnished: Branch, calendar: Calendar) -> None:
        added = furnished.add_timeline_event(
            "te2",
            {"timeline_id": "t1", "title": "B", "start": START, "element_ids": ["e2", "e1", "e2"]},
            calendar,
        )
        assert added["element_ids"] == ["e2", "e1"]

    def test_refuses_an_unknown_timeline(self, furnished: Branch, calendar: Calendar) -> None:
        errors = errors_of(
            lambda: furnished.add_timeline_event(
                "te2", {"timeline_id": "ghost", "title": "B", "start": START}, calendar
            )
        )
        assert list(errors) == ["timeline_id"]

    def test_refuses_a_missing_timeline(self, furnished: Branch, calendar: Calendar) -> None:
        errors = errors_of(
            lambda: furnished.add_timeline_event("te2", {"title": "B", "start": START}, calendar)
        )
        assert list(errors) == ["timeline_id"]

    def test_refuses_an_unknown_location(self, furnished: Branch, calendar: Calendar) -> None:
        errors = errors_of(
            lambda: furnished.add_timeline_event(
                "te2",
                {"timeline_id": "t1", "title": "B", "start": START, "location_id": "ghost"},
                calendar,
            )
        )
        assert list(errors) == ["location_id"]

    def test_refuses_an_unknown_element(self, furnished: Branch, calendar: Calendar) -> None:
        errors = errors_of(
            lambda: furnished.add_timeline_event(
                "te2",
                {"timeline_id": "t1", "title": "B", "start": START, "element_ids": ["e1", "x"]},
                calendar,
            )
        )
        assert list(errors) == ["element_ids"]

    @pytest.mark.parametrize("element_ids", ["e1", None, {"e1": True}, ["e1"] * 1001])
    def test_refuses_element_ids_that_are_not_a_list_of_ids(
        self, furnished: Branch, calendar: Calendar, element_ids: Any
    ) -> None:
        errors = errors_of(
            lambda: furnished.add_timeline_event(
                "te2",
                {"timeline_id": "t1", "title": "B", "start": START, "element_ids": element_ids},
                calendar,
            )
        )
        assert list(errors) == ["element_ids"]

    def test_refuses_a_missing_start(self, furnished: Branch, calendar: Calendar) -> None:
        errors = errors_of(
            lambda: furnished.add_timeline_event(
                "te2", {"timeline_id": "t1", "title": "B"}, calendar
            )
        )
        assert list(errors) == ["start"]

    def test_refuses_a_start_the_calendar_does_not_have(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        errors = errors_of(
            lambda: furnished.add_timeline_event(
                "te2", {"timeline_id": "t1", "title": "B", "start": {"year": 0}}, calendar
            )
        )
        assert list(errors) == ["start"]

    def test_refuses_an_invalid_end(self, furnished: Branch, calendar: Calendar) -> None:
        errors = errors_of(
            lambda: furnished.add_timeline_event(
                "te2",
                {
                    "timeline_id": "t1",
                    "title": "B",
                    "start": START,
                    "end": {"year": 1, "month": 13},
                },
                calendar,
            )
        )
        assert list(errors) == ["end"]

    def test_refuses_an_end_before_the_start(self, furnished: Branch, calendar: Calendar) -> None:
        errors = errors_of(
            lambda: furnished.add_timeline_event(
                "te2",
                {
                    "timeline_id": "t1",
                    "title": "B",
                    "start": START,
                    "end": {"year": 3001, "month": 9, "day": 21},
                },
                calendar,
            )
        )
        assert list(errors) == ["end"]
        assert "te2" not in furnished.entities["timeline_events"]

    def test_accepts_a_coarser_end_in_the_same_period(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        added = furnished.add_timeline_event(
            "te2",
            {"timeline_id": "t1", "title": "B", "start": START, "end": {"year": 3001, "month": 9}},
            calendar,
        )
        assert added["end"] == {"year": 3001, "month": 9}

    def test_accepts_an_end_equal_to_the_start(self, furnished: Branch, calendar: Calendar) -> None:
        added = furnished.add_timeline_event(
            "te2", {"timeline_id": "t1", "title": "B", "start": START, "end": START}, calendar
        )
        assert added["end"] == START

    @pytest.mark.parametrize("title", ["", "t" * 201, None])
    def test_refuses_a_bad_title(self, furnished: Branch, calendar: Calendar, title: Any) -> None:
        errors = errors_of(
            lambda: furnished.add_timeline_event(
                "te2", {"timeline_id": "t1", "title": title, "start": START}, calendar
            )
        )
        assert list(errors) == ["title"]

    def test_refuses_metadata_over_64_kib(self, furnished: Branch, calendar: Calendar) -> None:
        errors = errors_of(
            lambda: furnished.add_timeline_event(
                "te2",
                {
                    "timeline_id": "t1",
                    "title": "B",
                    "start": START,
                    "metadata": metadata_of_size(MAX_METADATA_BYTES + 1),
                },
                calendar,
            )
        )
        assert list(errors) == ["metadata"]

    def test_refuses_a_duplicate_id(self, furnished: Branch, calendar: Calendar) -> None:
        with pytest.raises(Conflict):
            furnished.add_timeline_event(
                "te1", {"timeline_id": "t1", "title": "B", "start": START}, calendar
            )


class TestUpdatingATimelineEvent:
    def test_records_only_the_changed_plain_fields(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        furnished.update_timeline_event(
            "te1", {"title": "Crowning", "timeline_id": "t1", "location_id": "l1"}, None, calendar
        )
        (event,) = pending(furnished)
        assert type(event).__name__ == "TimelineEventUpdated"
        assert event.changes == {"title": "Crowning"}

    def test_a_patch_that_changes_nothing_records_nothing(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        furnished.update_timeline_event(
            "te1",
            {
                "title": "Coronation",
                "start": dict(START),
                "end": None,
                "element_ids": ["e1"],
                "location_id": "l1",
                "metadata": {"weather": "sunny"},
            },
            None,
            calendar,
        )
        assert pending(furnished) == []

    def test_null_clears_the_location_and_description(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        furnished.update_timeline_event("te1", {"description": "Grand"}, None, calendar)
        furnished.update_timeline_event(
            "te1", {"location_id": None, "description": None}, None, calendar
        )
        te1 = furnished.get("timeline_events", "te1")
        assert (te1["location_id"], te1["description"]) == (None, None)
        assert pending(furnished)[-1].changes == {"location_id": None, "description": None}

    def test_moves_it_to_another_timeline(self, furnished: Branch, calendar: Calendar) -> None:
        furnished.add_timeline("t2", {"name": "Other"})
        furnished.update_timeline_event("te1", {"timeline_id": "t2"}, None, calendar)
        assert furnished.get("timeline_events", "te1")["timeline_id"] == "t2"

    @pytest.mark.parametrize("timeline_id", ["ghost", None])
    def test_refuses_an_unknown_timeline(
        self, furnished: Branch, calendar: Calendar, timeline_id: Any
    ) -> None:
        errors = errors_of(
            lambda: furnished.update_timeline_event(
                "te1", {"timeline_id": timeline_id}, None, calendar
            )
        )
        assert list(errors) == ["timeline_id"]

    def test_refuses_an_unknown_location(self, furnished: Branch, calendar: Calendar) -> None:
        errors = errors_of(
            lambda: furnished.update_timeline_event("te1", {"location_id": "ghost"}, None, calendar)
        )
        assert list(errors) == ["location_id"]
        assert furnished.get("timeline_events", "te1")["location_id"] == "l1"

    def test_reschedules(self, furnished: Branch, calendar: Calendar) -> None:
        new_start = {"year": 3019, "month": 5, "day": 1}
        furnished.update_timeline_event(
            "te1", {"start": new_start, "end": {"year": 3019}}, None, calendar
        )
        (event,) = pending(furnished)
        assert type(event).__name__ == "TimelineEventRescheduled"
        assert (event.start, event.end) == (new_start, {"year": 3019})
        te1 = furnished.get("timeline_events", "te1")
        assert (te1["start"], te1["end"]) == (new_start, {"year": 3019})

    def test_null_clears_the_end(self, furnished: Branch, calendar: Calendar) -> None:
        furnished.update_timeline_event("te1", {"end": {"year": 3002}}, None, calendar)
        furnished.update_timeline_event("te1", {"end": None}, None, calendar)
        events = pending(furnished)
        assert types(events) == ["TimelineEventRescheduled", "TimelineEventRescheduled"]
        assert (events[-1].start, events[-1].end) == (START, None)
        assert furnished.get("timeline_events", "te1")["end"] is None

    def test_refuses_null_for_the_start(self, furnished: Branch, calendar: Calendar) -> None:
        errors = errors_of(
            lambda: furnished.update_timeline_event("te1", {"start": None}, None, calendar)
        )
        assert list(errors) == ["start"]

    def test_refuses_an_end_before_the_current_start(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        errors = errors_of(
            lambda: furnished.update_timeline_event("te1", {"end": {"year": 3000}}, None, calendar)
        )
        assert list(errors) == ["end"]
        assert furnished.get("timeline_events", "te1")["end"] is None

    def test_refuses_a_start_after_the_current_end(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        furnished.update_timeline_event("te1", {"end": {"year": 3001, "month": 10}}, None, calendar)
        pending(furnished)
        errors = errors_of(
            lambda: furnished.update_timeline_event(
                "te1", {"start": {"year": 3001, "month": 11, "day": 1}}, None, calendar
            )
        )
        assert list(errors) == ["end"]
        assert pending(furnished) == []

    def test_accepts_a_coarser_end_in_the_same_month(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        furnished.update_timeline_event("te1", {"end": {"year": 3001, "month": 9}}, None, calendar)
        assert furnished.get("timeline_events", "te1")["end"] == {"year": 3001, "month": 9}

    def test_rescheduling_to_the_same_dates_records_nothing(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        furnished.update_timeline_event("te1", {"start": START, "end": None}, None, calendar)
        assert pending(furnished) == []

    def test_links_and_unlinks_the_difference(self, furnished: Branch, calendar: Calendar) -> None:
        furnished.add_element("e3", {"kind": "creature", "name": "Shadowfax"})
        pending(furnished)
        furnished.update_timeline_event("te1", {"element_ids": ["e2", "e3"]}, None, calendar)
        events = pending(furnished)
        assert types(events) == ["ElementsUnlinked", "ElementsLinked"]
        assert events[0].element_ids == ["e1"]
        assert events[1].element_ids == ["e2", "e3"]
        assert furnished.get("timeline_events", "te1")["element_ids"] == ["e2", "e3"]

    def test_only_links_when_nothing_goes(self, furnished: Branch, calendar: Calendar) -> None:
        furnished.update_timeline_event("te1", {"element_ids": ["e1", "e2"]}, None, calendar)
        events = pending(furnished)
        assert types(events) == ["ElementsLinked"]
        assert events[0].element_ids == ["e2"]

    def test_the_same_elements_in_another_order_record_nothing(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        furnished.update_timeline_event("te1", {"element_ids": ["e1", "e2"]}, None, calendar)
        pending(furnished)
        furnished.update_timeline_event("te1", {"element_ids": ["e2", "e1"]}, None, calendar)
        assert pending(furnished) == []

    def test_refuses_an_unknown_element(self, furnished: Branch, calendar: Calendar) -> None:
        errors = errors_of(
            lambda: furnished.update_timeline_event(
                "te1", {"element_ids": ["e1", "ghost"]}, None, calendar
            )
        )
        assert list(errors) == ["element_ids"]
        assert furnished.get("timeline_events", "te1")["element_ids"] == ["e1"]

    def test_metadata_is_a_merge_patch(self, furnished: Branch, calendar: Calendar) -> None:
        furnished.update_timeline_event(
            "te1", {"metadata": {"weather": None, "guests": {"elves": 12}}}, None, calendar
        )
        assert furnished.get("timeline_events", "te1")["metadata"] == {
            "guests": {"hobbits": 4, "elves": 12}
        }

    def test_one_patch_can_emit_every_kind_of_change(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        furnished.update_timeline_event(
            "te1",
            {"title": "X", "start": {"year": 3002}, "element_ids": ["e2"]},
            None,
            calendar,
        )
        assert types(pending(furnished)) == [
            "TimelineEventUpdated",
            "TimelineEventRescheduled",
            "ElementsUnlinked",
            "ElementsLinked",
        ]

    def test_a_refused_patch_records_nothing(self, furnished: Branch, calendar: Calendar) -> None:
        with pytest.raises(InvalidCommand):
            furnished.update_timeline_event(
                "te1", {"title": "X", "element_ids": ["ghost"]}, None, calendar
            )
        assert furnished.get("timeline_events", "te1")["title"] == "Coronation"
        assert pending(furnished) == []

    def test_refuses_a_stale_expected_version(self, furnished: Branch, calendar: Calendar) -> None:
        with pytest.raises(StaleVersion):
            furnished.update_timeline_event("te1", {"title": "X"}, 1, calendar)


class TestRemovingATimelineEvent:
    def test_removes_it(self, furnished: Branch) -> None:
        furnished.remove_timeline_event("te1", None)
        assert types(pending(furnished)) == ["TimelineEventRemoved"]
        assert "te1" not in furnished.entities["timeline_events"]

    def test_frees_the_things_it_referenced(self, furnished: Branch) -> None:
        furnished.remove_timeline_event("te1", None)
        furnished.remove_element("e1", None, cascade=False)
        furnished.remove_timeline("t1", None, cascade=False)
        assert furnished.entities["elements"].keys() == {"e2"}

    def test_refuses_a_stale_expected_version(self, furnished: Branch) -> None:
        version = furnished.get("timeline_events", "te1")["version"]
        with pytest.raises(StaleVersion):
            furnished.remove_timeline_event("te1", version - 1)
        assert "te1" in furnished.entities["timeline_events"]

    def test_unknown_event_is_not_found(self, furnished: Branch) -> None:
        with pytest.raises(NotFound):
            furnished.remove_timeline_event("ghost", None)


class TestEntityVersions:
    def test_each_entity_carries_the_branch_version_of_its_last_change(
        self, branch: Branch, calendar: Calendar
    ) -> None:
        branch.add_timeline("t1", {"name": "T"})  # 1
        branch.add_location("l1", {"name": "L", "kind": "k"})  # 2
        branch.add_element("e1", {"kind": "k", "name": "E"})  # 3
        branch.add_timeline_event(
            "te1", {"timeline_id": "t1", "title": "A", "start": START}, calendar
        )  # 4
        branch.update_location("l1", {"parent_id": None, "name": "L2"}, None)  # 5
        branch.update_timeline_event("te1", {"element_ids": ["e1"]}, None, calendar)  # 6
        branch.update_timeline_event("te1", {"start": {"year": 1}}, None, calendar)  # 7
        assert branch.head_version == 7
        versions = {
            (c, i): e["version"]
            for c, entities in branch.entities.items()
            for i, e in entities.items()
        }
        assert versions == {
            ("timelines", "t1"): 1,
            ("locations", "l1"): 5,
            ("elements", "e1"): 3,
            ("timeline_events", "te1"): 7,
        }

    def test_a_move_bumps_the_version(self, furnished: Branch) -> None:
        furnished.update_location("l2", {"parent_id": None}, None)
        assert furnished.get("locations", "l2")["version"] == furnished.head_version

    def test_a_cascade_unlink_bumps_the_linked_events_version(self, furnished: Branch) -> None:
        furnished.remove_element("e1", None, cascade=True)
        assert furnished.get("timeline_events", "te1")["version"] == furnished.head_version - 1

    def test_a_cascade_clear_bumps_the_referencing_events_version(self, furnished: Branch) -> None:
        before = furnished.head_version
        furnished.remove_location("l1", None, cascade=True)
        # l2 removed (before+1), te1 cleared (before+2), l1 removed (before+3)
        assert furnished.get("timeline_events", "te1")["version"] == before + 2
        assert furnished.head_version == before + 3


class TestEventShape:
    def test_every_content_event_names_its_collection(self, furnished: Branch) -> None:
        furnished.remove_location("l1", None, cascade=True)
        furnished.remove_element("e1", None, cascade=True)
        furnished.remove_timeline("t1", None, cascade=True)
        by_collection = {(type(e).__name__, e.collection) for e in pending(furnished)}
        assert by_collection == {
            ("LocationRemoved", "locations"),
            ("TimelineEventUpdated", "timeline_events"),
            ("ElementsUnlinked", "timeline_events"),
            ("ElementRemoved", "elements"),
            ("TimelineEventRemoved", "timeline_events"),
            ("TimelineRemoved", "timelines"),
        }

    def test_the_first_event_of_main_starts_the_chain(self) -> None:
        branch = Branch.start(uuid4(), world_id=uuid4(), name="main")
        (started,) = pending(branch)
        assert started.prev_hash == GENESIS_HASH
