"""Reconcile: ordinary content events, in a safe order, that bring a branch to a desired state."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from commands.branch import Branch
from commands.dates import Calendar
from commands.errors import DomainError
from commands.reconcile import Desired, content_of, reconcile

START = {"year": 3019, "month": 3, "day": 25}


def loc(name: str, parent_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """The full content of a location."""
    return {
        "name": name,
        "kind": "region",
        "description": None,
        "parent_id": parent_id,
        "metadata": {},
        **fields,
    }


def elem(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "character",
        "name": name,
        "summary": None,
        "tags": [],
        "metadata": {},
        **fields,
    }


def tl(name: str) -> dict[str, Any]:
    return {"name": name, "description": None}


def tev(title: str, timeline_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "timeline_id": timeline_id,
        "title": title,
        "description": None,
        "start": START,
        "end": None,
        "location_id": None,
        "element_ids": [],
        "metadata": {},
        **fields,
    }


def snapshot(branch: Branch) -> Desired:
    """The branch's whole content as a desired state (every entity it holds now)."""
    return {
        collection: {i: content_of(e) for i, e in entities.items()}
        for collection, entities in branch.entities.items()
    }


def emitted(branch: Branch) -> list[tuple[str, str]]:
    """(event type, entity id) of the events the branch triggered since the last collection."""
    events: list[Any] = list(branch.collect_events())
    return [(type(e).__name__, e.entity_id) for e in events]


def assert_reached(branch: Branch, desired: Desired) -> None:
    """Every entity the desired state names has exactly the desired content (or is gone)."""
    for collection, entities in desired.items():
        for entity_id, fields in entities.items():
            found = branch.entities[collection].get(entity_id)
            if fields is None:
                assert found is None, (collection, entity_id, found)
            else:
                assert content_of(found) == fields, (collection, entity_id)


@pytest.fixture
def furnished(branch: Branch, calendar: Calendar) -> Branch:
    """t1; locations l1 > l2 > l3; elements e1, e2; te1 on t1 at l2 linking e1 and e2."""
    branch.add_timeline("t1", tl("War"))
    branch.add_location("l1", loc("Arda", kind="planet"))
    branch.add_location("l2", loc("Gondor", "l1"))
    branch.add_location("l3", loc("Minas Tirith", "l2"))
    branch.add_element("e1", elem("Aragorn", tags=["king"]))
    branch.add_element("e2", elem("Anduril", kind="artifact"))
    branch.add_timeline_event(
        "te1",
        tev("Coronation", "t1", location_id="l2", element_ids=["e1", "e2"]),
        calendar,
    )
    branch.collect_events()
    return branch


class TestNothingToDo:
    def test_the_current_state_emits_nothing(self, furnished: Branch, calendar: Calendar) -> None:
        head = furnished.head_version
        assert reconcile(furnished, snapshot(furnished), calendar) == 0
        assert emitted(furnished) == []
        assert furnished.head_version == head

    def test_an_empty_desired_state_leaves_everything_alone(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        before = snapshot(furnished)
        assert reconcile(furnished, {}, calendar) == 0
        assert snapshot(furnished) == before

    def test_entities_the_desired_state_does_not_name_are_left_alone(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        before = snapshot(furnished)
        reconcile(furnished, {"elements": {"e2": elem("Narsil", kind="artifact")}}, calendar)
        after = snapshot(furnished)
        assert after["elements"]["e2"] == elem("Narsil", kind="artifact")
        assert after["locations"] == before["locations"]
        assert after["timeline_events"] == before["timeline_events"]
        assert after["elements"]["e1"] == before["elements"]["e1"]


class TestAddingNestedLocations:
    def test_a_chain_given_children_first_is_added_parents_first(
        self, branch: Branch, calendar: Calendar
    ) -> None:
        desired: Desired = {
            "locations": {
                "c": loc("Street", "b"),
                "b": loc("City", "a"),
                "a": loc("Realm"),
            }
        }
        assert reconcile(branch, desired, calendar) == 3
        assert emitted(branch) == [
            ("LocationAdded", "a"),
            ("LocationAdded", "b"),
            ("LocationAdded", "c"),
        ]
        assert_reached(branch, desired)

    def test_new_locations_under_an_existing_one_and_an_existing_one_under_a_new_one(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        desired: Desired = {
            "locations": {
                "n2": loc("Pelennor", "n1"),
                "n1": loc("Anorien", "l1"),
                "l3": loc("Minas Tirith", "n2"),
            }
        }
        reconcile(furnished, desired, calendar)
        assert_reached(furnished, desired)


class TestMovingLocations:
    def test_a_parent_and_its_child_swap_places(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        # now l1 > l2 > l3; wanted l2 at the root with l1 under it (and l3 still under l2)
        desired: Desired = {
            "locations": {"l1": loc("Arda", "l2", kind="planet"), "l2": loc("Gondor")}
        }
        reconcile(furnished, desired, calendar)
        assert_reached(furnished, desired)
        assert furnished.entities["locations"]["l3"]["parent_id"] == "l2"

    def test_a_chain_is_turned_upside_down(self, furnished: Branch, calendar: Calendar) -> None:
        # now l1 > l2 > l3; wanted l3 > l2 > l1
        desired: Desired = {
            "locations": {
                "l1": loc("Arda", "l2", kind="planet"),
                "l2": loc("Gondor", "l3"),
                "l3": loc("Minas Tirith"),
            }
        }
        reconcile(furnished, desired, calendar)
        assert_reached(furnished, desired)

    def test_moves_are_location_moved_events(self, furnished: Branch, calendar: Calendar) -> None:
        desired: Desired = {"locations": {"l3": loc("Minas Tirith", "l1")}}
        count = reconcile(furnished, desired, calendar)
        events = emitted(furnished)
        assert count == len(events) >= 1
        assert set(events) == {("LocationMoved", "l3")}
        assert_reached(furnished, desired)


class TestRemoving:
    def test_a_location_chain_is_removed_deepest_first(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        desired: Desired = {
            "timeline_events": {"te1": None},
            "locations": {"l1": None, "l2": None, "l3": None},
        }
        reconcile(furnished, desired, calendar)
        events = emitted(furnished)
        assert events == [
            ("TimelineEventRemoved", "te1"),
            ("LocationRemoved", "l3"),
            ("LocationRemoved", "l2"),
            ("LocationRemoved", "l1"),
        ]
        assert furnished.entities["locations"] == {}

    def test_everything_can_be_removed_with_explicit_events_only(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        desired: Desired = {
            collection: dict.fromkeys(entities)
            for collection, entities in snapshot(furnished).items()
        }
        count = reconcile(furnished, desired, calendar)
        events = emitted(furnished)
        assert count == len(events) == 7
        assert {name for name, _ in events} == {
            "TimelineEventRemoved",
            "ElementRemoved",
            "TimelineRemoved",
            "LocationRemoved",
        }
        assert all(not entities for entities in furnished.entities.values())

    def test_removing_what_is_already_gone_is_nothing(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        assert reconcile(furnished, {"elements": {"ghost": None}}, calendar) == 0


class TestReAdding:
    def test_a_removed_timeline_event_comes_back_after_what_it_refers_to(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        everything = snapshot(furnished)
        furnished.remove_timeline_event("te1", None)
        furnished.remove_element("e1", None, cascade=False)
        furnished.remove_element("e2", None, cascade=False)
        furnished.remove_timeline("t1", None, cascade=False)
        furnished.remove_location("l1", None, cascade=True)
        furnished.collect_events()
        assert all(not entities for entities in furnished.entities.values())
        # the desired state names the timeline event first: reconcile must order it last
        desired: Desired = {
            "timeline_events": everything["timeline_events"],
            "elements": everything["elements"],
            "timelines": everything["timelines"],
            "locations": everything["locations"],
        }
        reconcile(furnished, desired, calendar)
        events = emitted(furnished)
        assert events[-1] == ("TimelineEventAdded", "te1")
        assert snapshot(furnished) == everything

    def test_a_relinked_rescheduled_and_moved_event_is_restored(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        wanted = snapshot(furnished)["timeline_events"]
        furnished.update_timeline_event(
            "te1",
            {"element_ids": ["e1"], "start": {"year": 3020}, "location_id": None, "title": "X"},
            None,
            calendar,
        )
        furnished.collect_events()
        reconcile(furnished, {"timeline_events": wanted}, calendar)
        assert content_of(furnished.entities["timeline_events"]["te1"]) == wanted["te1"]

    def test_restored_element_ids_keep_their_desired_order(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        # te1 links [e1, e2]; after e1 is unlinked, linking it again puts it last
        wanted = snapshot(furnished)["timeline_events"]
        furnished.update_timeline_event("te1", {"element_ids": ["e2"]}, None, calendar)
        furnished.collect_events()
        reconcile(furnished, {"timeline_events": wanted}, calendar)
        assert furnished.entities["timeline_events"]["te1"]["element_ids"] == ["e1", "e2"]


class TestMetadata:
    def test_metadata_reaches_the_target_through_a_merge_patch(
        self, branch: Branch, calendar: Calendar
    ) -> None:
        branch.add_location(
            "l1", loc("Keep", metadata={"walls": {"north": 2, "south": 1}, "gate": "iron"})
        )
        branch.collect_events()
        target = loc("Keep", metadata={"walls": {"north": 2, "east": 4}, "moat": [1, 2]})
        assert reconcile(branch, {"locations": {"l1": target}}, calendar) == 1
        events: list[Any] = list(branch.collect_events())
        (event,) = events
        assert type(event).__name__ == "LocationUpdated"
        assert event.changes == {
            "metadata": {"walls": {"south": None, "east": 4}, "gate": None, "moat": [1, 2]}
        }
        assert content_of(branch.entities["locations"]["l1"]) == target

    def test_element_metadata_and_tags_reach_the_target(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        target = elem("Strider", tags=["ranger"], metadata={"house": {"name": "Telcontar"}})
        reconcile(furnished, {"elements": {"e1": target}}, calendar)
        assert content_of(furnished.entities["elements"]["e1"]) == target


class TestReachingAnyState:
    def test_a_heavily_edited_branch_goes_back_to_an_earlier_snapshot(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        earlier = snapshot(furnished)
        furnished.add_location("l4", loc("Osgiliath", "l3"))
        furnished.update_location("l3", {"parent_id": None}, None)
        furnished.update_location("l1", {"parent_id": "l4", "name": "Earth"}, None)
        furnished.update_element("e1", {"tags": ["ranger"], "metadata": {"age": 87}}, None)
        furnished.remove_timeline_event("te1", None)
        furnished.remove_element("e2", None, cascade=False)
        furnished.add_timeline("t2", tl("Peace"))
        furnished.add_timeline_event("te2", tev("Feast", "t2", location_id="l4"), calendar)
        furnished.collect_events()
        desired: Desired = {
            collection: {i: earlier[collection].get(i) for i in ids}
            for collection, ids in (
                (c, furnished.entities[c].keys() | earlier[c].keys()) for c in earlier
            )
        }
        reconcile(furnished, copy.deepcopy(desired), calendar)
        assert snapshot(furnished) == earlier

    def test_and_forward_again(self, furnished: Branch, calendar: Calendar) -> None:
        start = snapshot(furnished)
        desired: Desired = {
            "locations": {"l1": None, "l2": loc("Gondor"), "l3": loc("Minas Tirith", "l2")},
            "elements": {"e2": None, "e3": elem("Faramir", tags=["steward"])},
            "timelines": {"t1": None, "t2": tl("Fourth Age")},
            "timeline_events": {
                "te1": None,
                "te2": tev("Wedding", "t2", location_id="l3", element_ids=["e1", "e3"]),
            },
        }
        reconcile(furnished, desired, calendar)
        assert_reached(furnished, desired)
        assert content_of(furnished.entities["elements"]["e1"]) == start["elements"]["e1"]


class TestAnInconsistentDesiredState:
    def test_a_timeline_event_linking_an_element_desired_removed_is_refused(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        desired: Desired = {
            "elements": {"e1": None},
            "timeline_events": {
                "te2": tev("Parley", "t1", element_ids=["e1"]),
            },
        }
        with pytest.raises(DomainError):
            reconcile(furnished, desired, calendar)

    def test_keeping_a_link_to_an_element_desired_removed_is_refused(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        with pytest.raises(DomainError):
            reconcile(furnished, {"elements": {"e1": None}}, calendar)

    def test_a_location_under_a_location_desired_removed_is_refused(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        desired: Desired = {"locations": {"l9": loc("Ruin", "l3"), "l3": None}}
        with pytest.raises(DomainError):
            reconcile(furnished, desired, calendar)

    def test_a_reference_to_an_entity_that_does_not_exist_is_refused(
        self, furnished: Branch, calendar: Calendar
    ) -> None:
        desired: Desired = {"timeline_events": {"te2": tev("Lost", "no-such-timeline")}}
        with pytest.raises(DomainError):
            reconcile(furnished, desired, calendar)

    def test_a_location_cycle_is_refused(self, furnished: Branch, calendar: Calendar) -> None:
        desired: Desired = {
            "locations": {"l1": loc("Arda", "l3", kind="planet"), "l2": loc("Gondor", "l1")}
        }  # l3 stays under l2: l1 > l2 > l3 > l1
        with pytest.raises(DomainError):
            reconcile(furnished, desired, calendar)
