"""The World aggregate: settings, calendar, members and the branch registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import uuid4

import pytest

from commands.chained import ChainedAggregate
from commands.dates import DEFAULT_CALENDAR
from commands.errors import Conflict, InvalidCommand, NotFound
from commands.world import ROLES, World, branch_id

SHIRE_CALENDAR: dict[str, Any] = {
    "months": [{"name": "Afteryule", "days": 30}, {"name": "Solmath", "days": 30}],
    "year_zero": True,
    "eras": [{"name": "Third Age", "start_year": 1}],
}


def pending(aggregate: ChainedAggregate) -> list[Any]:
    """Collect the events `aggregate` has triggered and not yet handed over."""
    return list(aggregate.collect_events())


def types(events: Sequence[Any]) -> list[str]:
    """The class names of `events`, in order."""
    return [type(e).__name__ for e in events]


class TestCreatingAWorld:
    def test_makes_the_creator_its_owner(self) -> None:
        world = World.create(uuid4(), name="Aerth", owner_id="u-1")
        assert world.members == {"u-1": "owner"}
        assert world.role_of("u-1") == "owner"
        assert world.role_of("someone-else") is None

    def test_uses_the_default_calendar_when_none_is_given(self) -> None:
        world = World.create(uuid4(), name="Aerth", owner_id="u-1")
        assert world.calendar == DEFAULT_CALENDAR
        assert world.calendar_rules.days_per_year == 365
        assert world.calendar_rules.year_zero is False

    def test_keeps_a_given_calendar_in_canonical_form(self) -> None:
        world = World.create(
            uuid4(), name="Shire", owner_id="u-1", calendar={**SHIRE_CALENDAR, "year_zero": True}
        )
        assert world.calendar == SHIRE_CALENDAR
        assert world.calendar_rules.months == (("Afteryule", 30), ("Solmath", 30))

    def test_records_one_world_created_event(self) -> None:
        world_id = uuid4()
        world = World.create(world_id, name="Aerth", owner_id="u-1", description="A world")
        events = pending(world)
        assert types(events) == ["WorldCreated"]
        assert events[0].originator_id == world_id
        assert (events[0].name, events[0].description, events[0].owner_id) == (
            "Aerth",
            "A world",
            "u-1",
        )
        assert world.version == 1
        assert world.branches == {}

    @pytest.mark.parametrize("name", ["", "   ", "x" * 201, None])
    def test_refuses_a_bad_name(self, name: Any) -> None:
        with pytest.raises(InvalidCommand) as refused:
            World.create(uuid4(), name=name, owner_id="u-1")
        assert list(refused.value.errors) == ["name"]

    def test_refuses_a_bad_calendar(self) -> None:
        with pytest.raises(InvalidCommand) as refused:
            World.create(uuid4(), name="Aerth", owner_id="u-1", calendar={"months": []})
        assert list(refused.value.errors) == ["calendar.months"]


class TestRenamingAndDescribing:
    def test_renames(self, world: World) -> None:
        world.rename("Aerth Prime")
        assert world.name == "Aerth Prime"
        assert types(pending(world)) == ["WorldRenamed"]

    def test_renaming_to_the_same_name_records_nothing(self, world: World) -> None:
        world.rename(world.name)
        assert pending(world) == []

    def test_refuses_a_name_over_200_characters(self, world: World) -> None:
        with pytest.raises(InvalidCommand) as refused:
            world.rename("x" * 201)
        assert list(refused.value.errors) == ["name"]
        assert pending(world) == []

    def test_accepts_a_name_of_200_characters(self, world: World) -> None:
        world.rename("x" * 200)
        assert world.name == "x" * 200

    def test_describes_and_clears_the_description(self, world: World) -> None:
        world.describe("A small blue world")
        world.describe(None)
        assert world.description is None
        assert types(pending(world)) == ["WorldDescribed", "WorldDescribed"]

    def test_describing_with_the_same_text_records_nothing(self, world: World) -> None:
        world.describe("Same")
        pending(world)
        world.describe("Same")
        assert pending(world) == []

    def test_refuses_a_description_that_is_not_text(self, world: World) -> None:
        with pytest.raises(InvalidCommand) as refused:
            world.describe(42)  # type: ignore[arg-type]
        assert list(refused.value.errors) == ["description"]


class TestDefiningTheCalendar:
    def test_replaces_the_calendar(self, world: World) -> None:
        world.define_calendar(SHIRE_CALENDAR)
        assert world.calendar == SHIRE_CALENDAR
        assert world.calendar_rules.year_zero is True
        assert types(pending(world)) == ["CalendarDefined"]

    def test_records_the_canonical_form(self, world: World) -> None:
        world.define_calendar({"months": [{"name": "Only", "days": 100, "note": "x"}]})
        (event,) = pending(world)
        assert event.calendar == {
            "months": [{"name": "Only", "days": 100}],
            "year_zero": False,
            "eras": [],
        }

    def test_defining_the_same_calendar_records_nothing(self, world: World) -> None:
        world.define_calendar(DEFAULT_CALENDAR)
        assert pending(world) == []

    def test_refuses_an_invalid_calendar(self, world: World) -> None:
        with pytest.raises(InvalidCommand) as refused:
            world.define_calendar({"months": [{"name": "A", "days": 1}], "year_zero": "no"})
        assert list(refused.value.errors) == ["calendar.year_zero"]
        assert world.calendar == DEFAULT_CALENDAR


class TestMembers:
    def test_adds_a_member(self, world: World) -> None:
        world.set_member_role("bob", "editor")
        assert world.members == {"owner": "owner", "bob": "editor"}
        (event,) = pending(world)
        assert type(event).__name__ == "MemberAdded"
        assert (event.user_id, event.role) == ("bob", "editor")

    def test_changes_a_members_role(self, world: World) -> None:
        world.set_member_role("bob", "editor")
        world.set_member_role("bob", "auditor")
        assert world.role_of("bob") == "auditor"
        assert types(pending(world)) == ["MemberAdded", "MemberRoleChanged"]

    def test_setting_the_same_role_records_nothing(self, world: World) -> None:
        world.set_member_role("bob", "viewer")
        pending(world)
        world.set_member_role("bob", "viewer")
        assert pending(world) == []

    def test_removes_a_member(self, world: World) -> None:
        world.set_member_role("bob", "viewer")
        world.remove_member("bob")
        assert world.role_of("bob") is None
        assert types(pending(world)) == ["MemberAdded", "MemberRemoved"]

    def test_refuses_to_remove_someone_who_is_not_a_member(self, world: World) -> None:
        with pytest.raises(NotFound):
            world.remove_member("stranger")

    @pytest.mark.parametrize("role", ROLES)
    def test_accepts_every_known_role(self, world: World, role: str) -> None:
        world.set_member_role("bob", role)
        assert world.role_of("bob") == role

    @pytest.mark.parametrize("role", ["admin", "Owner", "", "superuser"])
    def test_refuses_an_unknown_role_keyed_by_role(self, world: World, role: str) -> None:
        with pytest.raises(InvalidCommand) as refused:
            world.set_member_role("bob", role)
        assert list(refused.value.errors) == ["role"]
        assert pending(world) == []

    def test_refuses_to_demote_the_last_owner(self, world: World) -> None:
        with pytest.raises(Conflict):
            world.set_member_role("owner", "editor")
        assert world.role_of("owner") == "owner"
        assert pending(world) == []

    def test_refuses_to_remove_the_last_owner(self, world: World) -> None:
        world.set_member_role("bob", "editor")
        pending(world)
        with pytest.raises(Conflict):
            world.remove_member("owner")
        assert world.role_of("owner") == "owner"
        assert pending(world) == []

    def test_an_owner_may_step_down_while_another_owner_remains(self, world: World) -> None:
        world.set_member_role("bob", "owner")
        world.set_member_role("owner", "viewer")
        world.remove_member("owner")
        assert world.members == {"bob": "owner"}

    def test_changing_a_non_owner_does_not_need_another_owner(self, world: World) -> None:
        world.set_member_role("bob", "editor")
        world.set_member_role("bob", "viewer")
        world.remove_member("bob")
        assert world.members == {"owner": "owner"}


class TestRegisteringBranches:
    def test_registers_a_branch_under_its_derived_id(self, world: World) -> None:
        new_id = world.register_branch("main")
        assert new_id == branch_id(world.id, "main")
        assert world.branches == {"main": {"branch_id": str(new_id), "forked_from": None}}
        assert types(pending(world)) == ["BranchCreated"]

    def test_records_where_a_fork_came_from(self, world: World) -> None:
        world.register_branch("main")
        world.register_branch("what-if", forked_from={"branch": "main", "version": 7})
        assert world.branches["what-if"]["forked_from"] == {"branch": "main", "version": 7}

    def test_refuses_a_duplicate_branch_name(self, world: World) -> None:
        world.register_branch("main")
        pending(world)
        with pytest.raises(Conflict):
            world.register_branch("main")
        assert pending(world) == []

    def test_branch_ids_are_stable_and_distinct(self) -> None:
        world_id = uuid4()
        assert branch_id(world_id, "main") == branch_id(world_id, "main")
        assert branch_id(world_id, "main") != branch_id(world_id, "what-if")
        assert branch_id(world_id, "main") != branch_id(uuid4(), "main")
