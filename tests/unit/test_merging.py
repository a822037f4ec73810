"""Comparing two states of a branch and three-way merging them, as pure functions."""

from __future__ import annotations

import copy
from typing import Any

from commands.merging import MergePlan, State, compare, plan_merge


def location(entity_id: str, version: int = 1, **fields: Any) -> dict[str, Any]:
    """A location as the Branch aggregate holds it (with `id` and `version`)."""
    return {
        "id": entity_id,
        "version": version,
        "name": "Keep",
        "kind": "castle",
        "description": None,
        "parent_id": None,
        "metadata": {},
        **fields,
    }


def element(entity_id: str, version: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "id": entity_id,
        "version": version,
        "kind": "character",
        "name": "Guard",
        "summary": None,
        "tags": [],
        "metadata": {},
        **fields,
    }


def timeline_event(entity_id: str, version: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "id": entity_id,
        "version": version,
        "timeline_id": "t1",
        "title": "Siege",
        "description": None,
        "start": {"year": 12},
        "end": None,
        "location_id": None,
        "element_ids": [],
        "metadata": {},
        **fields,
    }


def state(*entities: tuple[str, dict[str, Any]]) -> State:
    """A state from `(collection, entity)` pairs; every collection present."""
    found: State = {"locations": {}, "elements": {}, "timelines": {}, "timeline_events": {}}
    for collection, entity in entities:
        found[collection][entity["id"]] = entity
    return found


def merged(ancestor: State, ours: State, theirs: State) -> MergePlan:
    """`plan_merge`, checking that it leaves its inputs alone."""
    before = copy.deepcopy((ancestor, ours, theirs))
    plan = plan_merge(ancestor, ours, theirs)
    assert (ancestor, ours, theirs) == before
    return plan


def wanted(plan: MergePlan, collection: str, entity_id: str) -> dict[str, Any]:
    """The fields the plan wants an entity to have (it must not want it removed)."""
    fields = plan.desired[collection][entity_id]
    assert fields is not None
    return fields


def content(entity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if k not in ("id", "version")}


class TestCompare:
    def test_equal_states_have_no_changes(self) -> None:
        keep = ("locations", location("l1"))
        assert compare(state(keep), state(keep)) == []

    def test_only_the_version_differing_is_no_change(self) -> None:
        assert (
            compare(
                state(("locations", location("l1", 1))), state(("locations", location("l1", 9)))
            )
            == []
        )

    def test_an_entity_only_in_head_is_added_with_its_fields(self) -> None:
        changes = compare(state(), state(("elements", element("e1", tags=["elf"]))))
        assert changes == [
            {
                "entity_id": "e1",
                "collection": "elements",
                "change": "added",
                "fields": {
                    "kind": {"base": None, "head": "character"},
                    "name": {"base": None, "head": "Guard"},
                    "tags": {"base": None, "head": ["elf"]},
                    "metadata": {"base": None, "head": {}},
                },
            }
        ]

    def test_an_entity_only_in_base_is_removed(self) -> None:
        changes = compare(state(("locations", location("l1"))), state())
        assert len(changes) == 1
        assert changes[0]["entity_id"] == "l1"
        assert changes[0]["change"] == "removed"
        assert changes[0]["fields"]["name"] == {"base": "Keep", "head": None}

    def test_a_modified_entity_lists_only_the_changed_fields_with_both_values(self) -> None:
        base = state(("timeline_events", timeline_event("te1")))
        head = state(
            (
                "timeline_events",
                timeline_event("te1", 5, title="Great siege", element_ids=["e1"]),
            )
        )
        assert compare(base, head) == [
            {
                "entity_id": "te1",
                "collection": "timeline-events",
                "change": "modified",
                "fields": {
                    "title": {"base": "Siege", "head": "Great siege"},
                    "element_ids": {"base": [], "head": ["e1"]},
                },
            }
        ]

    def test_lists_added_removed_and_modified_across_collections(self) -> None:
        base = state(("locations", location("l1")), ("elements", element("e1")))
        head = state(
            ("locations", location("l1", 4, name="Fort")),
            ("timelines", {"id": "t1", "version": 3, "name": "Age", "description": None}),
        )
        assert [(c["collection"], c["entity_id"], c["change"]) for c in compare(base, head)] == [
            ("locations", "l1", "modified"),
            ("elements", "e1", "removed"),
            ("timelines", "t1", "added"),
        ]


class TestSourceOnlyChanges:
    def test_a_field_changed_only_by_the_source_is_applied(self) -> None:
        base = state(("locations", location("l1")))
        theirs = state(("locations", location("l1", 3, name="Fort")))
        plan = merged(base, base, theirs)
        assert plan.conflicts == []
        assert plan.desired == {"locations": {"l1": content(location("l1", name="Fort"))}}
        assert plan.edits == [
            {
                "entity_id": "l1",
                "collection": "locations",
                "change": "modified",
                "fields": content(location("l1", name="Fort")),
            }
        ]

    def test_a_source_change_keeps_our_changes_to_other_fields(self) -> None:
        base = state(("locations", location("l1")))
        ours = state(("locations", location("l1", 2, kind="fortress")))
        theirs = state(("locations", location("l1", 3, name="Fort")))
        plan = merged(base, ours, theirs)
        assert plan.conflicts == []
        assert plan.desired["locations"]["l1"] == content(
            location("l1", name="Fort", kind="fortress")
        )

    def test_an_entity_added_by_the_source_is_added(self) -> None:
        theirs = state(("elements", element("e9", name="Stranger")))
        plan = merged(state(), state(), theirs)
        assert plan.conflicts == []
        assert plan.desired == {"elements": {"e9": content(element("e9", name="Stranger"))}}
        assert [(e["entity_id"], e["change"]) for e in plan.edits] == [("e9", "added")]

    def test_an_entity_removed_only_by_the_source_is_removed(self) -> None:
        base = state(("elements", element("e1")))
        plan = merged(base, base, state())
        assert plan.conflicts == []
        assert plan.desired == {"elements": {"e1": None}}
        assert plan.edits == [
            {"entity_id": "e1", "collection": "elements", "change": "removed", "fields": None}
        ]

    def test_an_entity_the_source_did_not_touch_is_left_as_ours(self) -> None:
        base = state(("locations", location("l1")), ("elements", element("e1")))
        ours = state(("locations", location("l1", 2, name="Ours")))  # and e1 removed here
        theirs = state(
            ("locations", location("l1", 1)),
            ("elements", element("e1", 1)),
            ("timelines", {"id": "t1", "version": 3, "name": "Age", "description": None}),
        )
        plan = merged(base, ours, theirs)
        assert plan.conflicts == []
        assert plan.desired == {"timelines": {"t1": {"name": "Age", "description": None}}}
        assert [e["entity_id"] for e in plan.edits] == ["t1"]

    def test_an_entity_only_we_added_is_left_alone(self) -> None:
        ours = state(("elements", element("e2")))
        plan = merged(state(), ours, state())
        assert (plan.desired, plan.edits, plan.conflicts) == ({}, [], [])


class TestBothSidesAgreeing:
    def test_the_same_value_on_both_sides_is_no_conflict_and_no_edit(self) -> None:
        base = state(("locations", location("l1")))
        same = state(("locations", location("l1", 7, name="Fort")))
        plan = merged(base, same, copy.deepcopy(same))
        assert (plan.desired, plan.edits, plan.conflicts) == ({}, [], [])

    def test_both_removing_the_same_entity_is_no_conflict(self) -> None:
        base = state(("elements", element("e1")))
        plan = merged(base, state(), state())
        assert (plan.desired, plan.edits, plan.conflicts) == ({}, [], [])


class TestConflictingFields:
    def test_the_same_field_changed_differently_is_a_conflict_with_all_three_values(
        self,
    ) -> None:
        base = state(("locations", location("l1")))
        ours = state(("locations", location("l1", 2, name="Ours")))
        theirs = state(("locations", location("l1", 3, name="Theirs")))
        plan = merged(base, ours, theirs)
        assert len(plan.conflicts) == 1
        conflict = plan.conflicts[0]
        assert conflict["entity_id"] == "l1"
        assert conflict["field"] == "name"
        assert (conflict["base"], conflict["ours"], conflict["theirs"]) == (
            "Keep",
            "Ours",
            "Theirs",
        )

    def test_every_conflicting_field_is_listed(self) -> None:
        base = state(("locations", location("l1")), ("elements", element("e1")))
        ours = state(
            ("locations", location("l1", 2, name="A", kind="a")),
            ("elements", element("e1", 2, summary="ours")),
        )
        theirs = state(
            ("locations", location("l1", 3, name="B", kind="b")),
            ("elements", element("e1", 3, summary="theirs")),
        )
        plan = merged(base, ours, theirs)
        assert sorted((c["entity_id"], c["field"]) for c in plan.conflicts) == [
            ("e1", "summary"),
            ("l1", "kind"),
            ("l1", "name"),
        ]

    def test_a_change_here_against_a_removal_there_is_a_conflict(self) -> None:
        base = state(("elements", element("e1")))
        ours = state(("elements", element("e1", 2, name="Renamed")))
        plan = merged(base, ours, state())
        assert len(plan.conflicts) == 1
        conflict = plan.conflicts[0]
        assert conflict["entity_id"] == "e1"
        assert conflict["base"] == content(element("e1"))
        assert conflict["ours"] == content(element("e1", name="Renamed"))
        assert conflict["theirs"] is None

    def test_a_removal_here_against_a_change_there_is_a_conflict(self) -> None:
        base = state(("elements", element("e1")))
        theirs = state(("elements", element("e1", 3, summary="changed")))
        plan = merged(base, state(), theirs)
        assert len(plan.conflicts) == 1
        conflict = plan.conflicts[0]
        assert conflict["entity_id"] == "e1"
        assert conflict["base"] == content(element("e1"))
        assert conflict["ours"] is None
        assert conflict["theirs"] == content(element("e1", summary="changed"))


class TestMetadataKeyByKey:
    def test_different_keys_changed_on_each_side_both_arrive(self) -> None:
        base = state(("locations", location("l1", metadata={"walls": 2})))
        ours = state(("locations", location("l1", 2, metadata={"walls": 2, "gate": "north"})))
        theirs = state(("locations", location("l1", 3, metadata={"walls": 3})))
        plan = merged(base, ours, theirs)
        assert plan.conflicts == []
        assert wanted(plan, "locations", "l1")["metadata"] == {"walls": 3, "gate": "north"}

    def test_the_same_key_changed_differently_is_a_conflict_named_by_the_key(self) -> None:
        base = state(("locations", location("l1", metadata={"walls": 2, "moat": True})))
        ours = state(("locations", location("l1", 2, metadata={"walls": 4, "moat": True})))
        theirs = state(("locations", location("l1", 3, metadata={"walls": 5, "moat": False})))
        plan = merged(base, ours, theirs)
        assert plan.conflicts == [
            {
                "entity_id": "l1",
                "collection": "locations",
                "field": "metadata.walls",
                "base": 2,
                "ours": 4,
                "theirs": 5,
            }
        ]

    def test_a_key_removed_by_the_source_is_removed(self) -> None:
        base = state(("locations", location("l1", metadata={"walls": 2, "gate": "north"})))
        ours = state(
            ("locations", location("l1", 2, metadata={"walls": 2, "gate": "north", "x": 1}))
        )
        theirs = state(("locations", location("l1", 3, metadata={"walls": 2})))
        plan = merged(base, ours, theirs)
        assert plan.conflicts == []
        assert wanted(plan, "locations", "l1")["metadata"] == {"walls": 2, "x": 1}

    def test_the_same_key_set_to_the_same_value_is_no_conflict(self) -> None:
        base = state(("locations", location("l1", metadata={})))
        ours = state(("locations", location("l1", 2, metadata={"walls": 3, "a": 1})))
        theirs = state(("locations", location("l1", 3, metadata={"walls": 3, "b": 2})))
        plan = merged(base, ours, theirs)
        assert plan.conflicts == []
        assert wanted(plan, "locations", "l1")["metadata"] == {"walls": 3, "a": 1, "b": 2}


class TestSetFields:
    def test_tags_added_on_one_side_and_removed_on_the_other_both_take_effect(self) -> None:
        base = state(("elements", element("e1", tags=["elf", "noble"])))
        ours = state(("elements", element("e1", 2, tags=["elf", "noble", "king"])))
        theirs = state(("elements", element("e1", 3, tags=["elf"])))
        plan = merged(base, ours, theirs)
        assert plan.conflicts == []
        assert sorted(wanted(plan, "elements", "e1")["tags"]) == ["elf", "king"]

    def test_element_ids_added_on_both_sides_are_united(self) -> None:
        base = state(("timeline_events", timeline_event("te1", element_ids=["e1"])))
        ours = state(("timeline_events", timeline_event("te1", 2, element_ids=["e1", "e2"])))
        theirs = state(
            ("timeline_events", timeline_event("te1", 3, element_ids=["e3"]))
        )  # e1 unlinked, e3 linked there
        plan = merged(base, ours, theirs)
        assert plan.conflicts == []
        assert sorted(wanted(plan, "timeline_events", "te1")["element_ids"]) == ["e2", "e3"]

    def test_the_same_member_added_on_both_sides_appears_once(self) -> None:
        base = state(("elements", element("e1", tags=[])))
        ours = state(("elements", element("e1", 2, tags=["elf", "a"])))
        theirs = state(("elements", element("e1", 3, tags=["elf", "b"])))
        plan = merged(base, ours, theirs)
        assert plan.conflicts == []
        assert sorted(wanted(plan, "elements", "e1")["tags"]) == ["a", "b", "elf"]
