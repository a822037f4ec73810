"""The write-side application: commands in, events stored, races retried."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.application import Outcome, WorldHistory
from commands.dates import DEFAULT_CALENDAR
from commands.errors import (
    ConcurrentWrite,
    Conflict,
    DomainError,
    InvalidCommand,
    NotFound,
    StaleVersion,
)
from commands.messages import (
    AddEntity,
    Command,
    CreateWorld,
    RemoveEntity,
    RemoveMember,
    SetMemberRole,
    UpdateEntity,
    UpdateWorld,
)
from commands.provenance import Provenance
from commands.world import branch_id

COLLECTIONS = ("locations", "elements", "timelines", "timeline_events")

NEW_FIELDS: dict[str, dict[str, Any]] = {
    "locations": {"name": "Rivendell", "kind": "valley", "parent_id": "l1"},
    "elements": {"kind": "character", "name": "Elrond", "tags": ["elf"]},
    "timelines": {"name": "Second Age"},
    "timeline_events": {
        "timeline_id": "t1",
        "title": "Council",
        "start": {"year": 3018, "month": 10, "day": 25},
        "location_id": "l1",
        "element_ids": ["e1"],
    },
}
CHANGES: dict[str, dict[str, Any]] = {
    "locations": {"name": "Imladris"},
    "elements": {"summary": "Lord of Rivendell"},
    "timelines": {"description": "Before the Third"},
    "timeline_events": {"title": "Council of Elrond"},
}
EVENT_PREFIX = {
    "locations": "Location",
    "elements": "Element",
    "timelines": "Timeline",
    "timeline_events": "TimelineEvent",
}
RIVAL = Provenance(actor="rival")


def stream(app: WorldHistory, stream_id: UUID) -> list[Any]:
    """The stored events of one stream, read back through the application."""
    return list(app.events.get(stream_id))


def notifications(app: WorldHistory) -> list[Any]:
    """Every event the application has stored, in notification order."""
    return list(app.recorder.select_notifications(start=1, limit=1000))


def stored(app: WorldHistory) -> int:
    """How many events the application has stored."""
    return len(notifications(app))


def stored_types(app: WorldHistory, after: int = 0) -> list[str]:
    """The event class names of the notifications after the first `after`."""
    return [n.topic.replace(":", ".").rsplit(".", 1)[-1] for n in notifications(app)[after:]]


@pytest.fixture
def world_id(app: WorldHistory, alice: Provenance) -> UUID:
    """A world created by alice, with its `main` branch."""
    new_id = uuid4()
    app.handle(CreateWorld(world_id=new_id, owner_id="alice", name="Arda"), alice)
    return new_id


@pytest.fixture
def furnished(app: WorldHistory, world_id: UUID, alice: Provenance) -> UUID:
    """The world of `world_id` with t1, l1, e1 and an event te1 on t1 at l1 linking e1."""
    content: list[tuple[str, str, dict[str, Any]]] = [
        ("timelines", "t1", {"name": "Third Age"}),
        ("locations", "l1", {"name": "Eriador", "kind": "region"}),
        ("elements", "e1", {"kind": "character", "name": "Aragorn"}),
        (
            "timeline_events",
            "te1",
            {
                "timeline_id": "t1",
                "title": "Coronation",
                "start": {"year": 3019},
                "location_id": "l1",
                "element_ids": ["e1"],
            },
        ),
    ]
    for collection, entity_id, fields in content:
        app.handle(AddEntity(world_id, "main", collection, entity_id, fields), alice)
    return world_id


class TestCreatingAWorld:
    def test_creates_the_world_and_its_main_branch(
        self, app: WorldHistory, alice: Provenance
    ) -> None:
        world_id = uuid4()
        outcome = app.handle(
            CreateWorld(world_id=world_id, owner_id="alice", name="Arda", description="Home"),
            alice,
        )
        world = app.world(world_id)
        assert world.members == {"alice": "owner"}
        assert world.branches == {
            "main": {"branch_id": str(branch_id(world_id, "main")), "forked_from": None}
        }
        main = app.branch(world, "main")
        assert main.head_version == 0
        assert main.world_id == str(world_id)
        assert outcome.resource == {
            "id": str(world_id),
            "name": "Arda",
            "description": "Home",
            "calendar": DEFAULT_CALENDAR,
            "default_branch": "main",
            "created_at": world.created_on.isoformat(),
            "version": 2,
        }
        assert outcome.version == 2

    def test_stores_three_events_in_one_save(
        self, app: WorldHistory, alice: Provenance, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        inserts: list[int] = []
        insert_events = app.recorder.insert_events

        def counting(stored_events: list[Any], **kwargs: Any) -> Any:
            inserts.append(len(stored_events))
            return insert_events(stored_events, **kwargs)

        monkeypatch.setattr(app.recorder, "insert_events", counting)
        outcome = app.handle(CreateWorld(world_id=uuid4(), owner_id="alice", name="A"), alice)
        assert inserts == [3]
        assert stored_types(app) == ["WorldCreated", "BranchCreated", "BranchStarted"]
        assert outcome.position == notifications(app)[-1].id

    def test_keeps_a_given_calendar(self, app: WorldHistory, alice: Provenance) -> None:
        calendar = {"months": [{"name": "Long", "days": 400}], "year_zero": True, "eras": []}
        outcome = app.handle(
            CreateWorld(world_id=uuid4(), owner_id="alice", name="A", calendar=calendar), alice
        )
        assert outcome.resource["calendar"] == calendar

    def test_a_refused_world_stores_nothing(self, app: WorldHistory, alice: Provenance) -> None:
        with pytest.raises(InvalidCommand) as refused:
            app.handle(
                CreateWorld(world_id=uuid4(), owner_id="alice", name="A", calendar={"x": 1}), alice
            )
        assert list(refused.value.errors) == ["calendar"]
        with pytest.raises(InvalidCommand):
            app.handle(CreateWorld(world_id=uuid4(), owner_id="alice", name=""), alice)
        assert stored(app) == 0

    def test_the_outcome_does_not_share_the_default_calendar(
        self, app: WorldHistory, alice: Provenance, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Editing one response must not change the calendar later worlds start with."""
        monkeypatch.setitem(DEFAULT_CALENDAR, "months", copy.deepcopy(DEFAULT_CALENDAR["months"]))
        first = app.handle(CreateWorld(world_id=uuid4(), owner_id="alice", name="A"), alice)
        first.resource["calendar"]["months"][0]["days"] = 99
        second = app.handle(CreateWorld(world_id=uuid4(), owner_id="alice", name="B"), alice)
        assert second.resource["calendar"]["months"][0]["days"] == 31

    def test_refuses_a_world_id_that_is_taken_as_a_conflict(
        self, app: WorldHistory, world_id: UUID, alice: Provenance
    ) -> None:
        """Re-creating an existing world can never succeed: it is a 409, not a lost race."""
        before = stored(app)
        with pytest.raises(Conflict):
            app.handle(CreateWorld(world_id=world_id, owner_id="mallory", name="Mine"), alice)
        assert stored(app) == before
        assert app.world(world_id).members == {"alice": "owner"}


class TestUpdatingAWorld:
    def test_renames_describes_and_defines_the_calendar(
        self, app: WorldHistory, world_id: UUID, alice: Provenance
    ) -> None:
        calendar = {"months": [{"name": "Only", "days": 100}], "year_zero": False, "eras": []}
        before = stored(app)
        outcome = app.handle(
            UpdateWorld(
                world_id,
                {"name": "Middle-earth", "description": "Lore", "calendar": calendar},
                expected_version=2,
            ),
            alice,
        )
        assert stored_types(app, before) == ["WorldRenamed", "WorldDescribed", "CalendarDefined"]
        assert (outcome.resource["name"], outcome.resource["description"]) == (
            "Middle-earth",
            "Lore",
        )
        assert outcome.resource["calendar"] == calendar
        assert outcome.version == outcome.resource["version"] == 5
        assert app.world(world_id).calendar_rules.days_per_year == 100

    def test_refuses_a_stale_expected_version(
        self, app: WorldHistory, world_id: UUID, alice: Provenance
    ) -> None:
        app.handle(UpdateWorld(world_id, {"name": "Second"}), alice)
        before = stored(app)
        with pytest.raises(StaleVersion) as refused:
            app.handle(UpdateWorld(world_id, {"name": "Third"}, expected_version=2), alice)
        assert (refused.value.expected, refused.value.actual) == (2, 3)
        assert stored(app) == before
        assert app.world(world_id).name == "Second"

    def test_a_change_to_nothing_stores_nothing(
        self, app: WorldHistory, world_id: UUID, alice: Provenance
    ) -> None:
        before = stored(app)
        outcome = app.handle(UpdateWorld(world_id, {"name": "Arda", "description": None}), alice)
        assert outcome.position is None
        assert outcome.version == 2
        assert stored(app) == before

    def test_a_partly_invalid_change_stores_none_of_it(
        self, app: WorldHistory, world_id: UUID, alice: Provenance
    ) -> None:
        before = stored(app)
        with pytest.raises(InvalidCommand):
            app.handle(UpdateWorld(world_id, {"name": "New", "calendar": {"months": []}}), alice)
        assert stored(app) == before
        assert app.world(world_id).name == "Arda"

    def test_an_unknown_world_is_not_found(self, app: WorldHistory, alice: Provenance) -> None:
        with pytest.raises(NotFound):
            app.handle(UpdateWorld(uuid4(), {"name": "X"}), alice)

    def test_a_branch_id_is_not_a_world(
        self, app: WorldHistory, world_id: UUID, alice: Provenance
    ) -> None:
        with pytest.raises(NotFound):
            app.handle(UpdateWorld(branch_id(world_id, "main"), {"name": "X"}), alice)


class TestMembers:
    def test_adds_changes_and_removes_a_member(
        self, app: WorldHistory, world_id: UUID, alice: Provenance
    ) -> None:
        before = stored(app)
        added = app.handle(SetMemberRole(world_id, "bob", "editor"), alice)
        changed = app.handle(SetMemberRole(world_id, "bob", "viewer"), alice)
        removed = app.handle(RemoveMember(world_id, "bob"), alice)
        assert stored_types(app, before) == ["MemberAdded", "MemberRoleChanged", "MemberRemoved"]
        assert added.resource == {"user_id": "bob", "role": "editor"}
        assert changed.resource == {"user_id": "bob", "role": "viewer"}
        assert removed.resource == {"user_id": "bob"}
        assert [added.version, changed.version, removed.version] == [3, 4, 5]
        assert app.world(world_id).members == {"alice": "owner"}

    def test_refuses_to_leave_a_world_without_an_owner(
        self, app: WorldHistory, world_id: UUID, alice: Provenance
    ) -> None:
        before = stored(app)
        with pytest.raises(Conflict):
            app.handle(SetMemberRole(world_id, "alice", "viewer"), alice)
        with pytest.raises(Conflict):
            app.handle(RemoveMember(world_id, "alice"), alice)
        assert stored(app) == before

    def test_refuses_an_unknown_role(
        self, app: WorldHistory, world_id: UUID, alice: Provenance
    ) -> None:
        with pytest.raises(InvalidCommand) as refused:
            app.handle(SetMemberRole(world_id, "bob", "emperor"), alice)
        assert list(refused.value.errors) == ["role"]

    def test_removing_a_stranger_is_not_found(
        self, app: WorldHistory, world_id: UUID, alice: Provenance
    ) -> None:
        with pytest.raises(NotFound):
            app.handle(RemoveMember(world_id, "stranger"), alice)

    def test_an_unknown_world_is_not_found(self, app: WorldHistory, alice: Provenance) -> None:
        with pytest.raises(NotFound):
            app.handle(SetMemberRole(uuid4(), "bob", "editor"), alice)
        with pytest.raises(NotFound):
            app.handle(RemoveMember(uuid4(), "bob"), alice)


class TestAddingEntities:
    @pytest.mark.parametrize("collection", COLLECTIONS)
    def test_adds_to_every_collection(
        self, app: WorldHistory, furnished: UUID, alice: Provenance, collection: str
    ) -> None:
        before = stored(app)
        outcome = app.handle(
            AddEntity(furnished, "main", collection, "new", NEW_FIELDS[collection]), alice
        )
        assert stored_types(app, before) == [f"{EVENT_PREFIX[collection]}Added"]
        assert outcome.position == notifications(app)[-1].id
        assert outcome.version == 5
        assert outcome.resource["id"] == "new"
        assert outcome.resource["version"] == 5
        assert app.entity(furnished, "main", collection, "new") == outcome.resource

    def test_checks_dates_against_the_worlds_calendar(
        self, app: WorldHistory, alice: Provenance
    ) -> None:
        world_id = uuid4()
        calendar = {"months": [{"name": "Frost", "days": 40}], "year_zero": True}
        app.handle(
            CreateWorld(world_id=world_id, owner_id="alice", name="A", calendar=calendar), alice
        )
        app.handle(AddEntity(world_id, "main", "timelines", "t1", {"name": "T"}), alice)
        fields = {"timeline_id": "t1", "title": "Thaw", "start": {"year": 0, "month": 1, "day": 40}}
        outcome = app.handle(AddEntity(world_id, "main", "timeline_events", "te1", fields), alice)
        assert outcome.resource["start"] == {"year": 0, "month": 1, "day": 40}
        with pytest.raises(InvalidCommand) as refused:
            app.handle(
                AddEntity(
                    world_id,
                    "main",
                    "timeline_events",
                    "te2",
                    {**fields, "start": {"year": 1, "month": 2}},
                ),
                alice,
            )
        assert list(refused.value.errors) == ["start"]

    def test_a_refused_add_stores_nothing(
        self, app: WorldHistory, furnished: UUID, alice: Provenance
    ) -> None:
        before = stored(app)
        with pytest.raises(InvalidCommand) as refused:
            app.handle(
                AddEntity(
                    furnished,
                    "main",
                    "locations",
                    "x",
                    {"name": "X", "kind": "k", "parent_id": "?"},
                ),
                alice,
            )
        assert list(refused.value.errors) == ["parent_id"]
        with pytest.raises(Conflict):
            app.handle(AddEntity(furnished, "main", "timelines", "t1", {"name": "Again"}), alice)
        assert stored(app) == before

    def test_an_unknown_world_or_branch_is_not_found(
        self, app: WorldHistory, world_id: UUID, alice: Provenance
    ) -> None:
        with pytest.raises(NotFound):
            app.handle(AddEntity(uuid4(), "main", "timelines", "t", {"name": "T"}), alice)
        with pytest.raises(NotFound):
            app.handle(AddEntity(world_id, "what-if", "timelines", "t", {"name": "T"}), alice)

    def test_an_unknown_collection_is_refused_as_a_domain_error(
        self, app: WorldHistory, world_id: UUID, alice: Provenance
    ) -> None:
        """A bad collection name must be a refusal the API can map, not a KeyError (500)."""
        before = stored(app)
        with pytest.raises(DomainError):
            app.handle(AddEntity(world_id, "main", "widgets", "w", {"name": "W"}), alice)
        assert stored(app) == before


class TestUpdatingEntities:
    @pytest.mark.parametrize("collection", COLLECTIONS)
    def test_updates_every_collection(
        self, app: WorldHistory, furnished: UUID, alice: Provenance, collection: str
    ) -> None:
        entity_id = {"locations": "l1", "elements": "e1", "timelines": "t1"}.get(collection, "te1")
        current = app.entity(furnished, "main", collection, entity_id)["version"]
        before = stored(app)
        outcome = app.handle(
            UpdateEntity(furnished, "main", collection, entity_id, CHANGES[collection], current),
            alice,
        )
        assert stored_types(app, before) == [f"{EVENT_PREFIX[collection]}Updated"]
        assert outcome.version == outcome.resource["version"] == 5
        assert outcome.position == notifications(app)[-1].id
        for field, value in CHANGES[collection].items():
            assert outcome.resource[field] == value
            assert app.entity(furnished, "main", collection, entity_id)[field] == value

    def test_a_no_op_patch_stores_nothing(
        self, app: WorldHistory, furnished: UUID, alice: Provenance
    ) -> None:
        before = stored(app)
        outcome = app.handle(
            UpdateEntity(furnished, "main", "timelines", "t1", {"name": "Third Age"}), alice
        )
        assert outcome.position is None
        assert outcome.resource["version"] == 1
        assert stored(app) == before

    def test_one_patch_may_store_several_events(
        self, app: WorldHistory, furnished: UUID, alice: Provenance
    ) -> None:
        app.handle(
            AddEntity(furnished, "main", "elements", "e2", {"kind": "k", "name": "E"}), alice
        )
        before = stored(app)
        outcome = app.handle(
            UpdateEntity(
                furnished,
                "main",
                "timeline_events",
                "te1",
                {"title": "Crowning", "end": {"year": 3020}, "element_ids": ["e2"]},
            ),
            alice,
        )
        assert stored_types(app, before) == [
            "TimelineEventUpdated",
            "TimelineEventRescheduled",
            "ElementsUnlinked",
            "ElementsLinked",
        ]
        assert outcome.position == notifications(app)[-1].id
        assert outcome.resource["element_ids"] == ["e2"]
        assert outcome.resource["version"] == app.branch(app.world(furnished), "main").head_version

    def test_refuses_a_stale_expected_version(
        self, app: WorldHistory, furnished: UUID, alice: Provenance
    ) -> None:
        before = stored(app)
        with pytest.raises(StaleVersion):
            app.handle(
                UpdateEntity(
                    furnished, "main", "locations", "l1", {"name": "X"}, expected_version=9
                ),
                alice,
            )
        assert stored(app) == before

    def test_an_unknown_entity_is_not_found(
        self, app: WorldHistory, furnished: UUID, alice: Provenance
    ) -> None:
        with pytest.raises(NotFound):
            app.handle(UpdateEntity(furnished, "main", "elements", "ghost", {"name": "X"}), alice)
        with pytest.raises(NotFound):
            app.entity(furnished, "main", "elements", "ghost")


class TestRemovingEntities:
    @pytest.mark.parametrize("collection", COLLECTIONS)
    def test_removes_from_every_collection(
        self, app: WorldHistory, furnished: UUID, alice: Provenance, collection: str
    ) -> None:
        app.handle(AddEntity(furnished, "main", collection, "new", NEW_FIELDS[collection]), alice)
        before = stored(app)
        outcome = app.handle(RemoveEntity(furnished, "main", collection, "new"), alice)
        assert stored_types(app, before) == [f"{EVENT_PREFIX[collection]}Removed"]
        assert outcome.resource == {"id": "new", "version": 6}
        assert outcome.position == notifications(app)[-1].id
        with pytest.raises(NotFound):
            app.entity(furnished, "main", collection, "new")

    @pytest.mark.parametrize(
        ("collection", "entity_id"),
        [("locations", "l1"), ("elements", "e1"), ("timelines", "t1")],
    )
    def test_refuses_to_remove_what_is_referenced(
        self, app: WorldHistory, furnished: UUID, alice: Provenance, collection: str, entity_id: str
    ) -> None:
        before = stored(app)
        with pytest.raises(Conflict) as refused:
            app.handle(RemoveEntity(furnished, "main", collection, entity_id), alice)
        assert refused.value.references == [{"collection": "timeline_events", "id": "te1"}]
        assert stored(app) == before

    @pytest.mark.parametrize(
        ("collection", "entity_id", "events"),
        [
            ("locations", "l1", ["TimelineEventUpdated", "LocationRemoved"]),
            ("elements", "e1", ["ElementsUnlinked", "ElementRemoved"]),
            ("timelines", "t1", ["TimelineEventRemoved", "TimelineRemoved"]),
        ],
    )
    def test_a_cascade_stores_each_explicit_event(
        self,
        app: WorldHistory,
        furnished: UUID,
        alice: Provenance,
        collection: str,
        entity_id: str,
        events: list[str],
    ) -> None:
        before = stored(app)
        outcome = app.handle(
            RemoveEntity(furnished, "main", collection, entity_id, cascade=True), alice
        )
        assert stored_types(app, before) == events
        assert outcome.resource == {"id": entity_id, "version": 6}
        assert outcome.position == notifications(app)[-1].id

    def test_refuses_a_stale_expected_version(
        self, app: WorldHistory, furnished: UUID, alice: Provenance
    ) -> None:
        before = stored(app)
        with pytest.raises(StaleVersion):
            app.handle(
                RemoveEntity(furnished, "main", "timeline_events", "te1", expected_version=1),
                alice,
            )
        assert stored(app) == before

    def test_an_unknown_entity_is_not_found(
        self, app: WorldHistory, furnished: UUID, alice: Provenance
    ) -> None:
        with pytest.raises(NotFound):
            app.handle(RemoveEntity(furnished, "main", "timeline_events", "ghost"), alice)


class TestPositions:
    def test_each_accepted_change_stores_exactly_one_event_at_a_rising_position(
        self, app: WorldHistory, world_id: UUID, alice: Provenance
    ) -> None:
        commands: list[Command] = [
            AddEntity(world_id, "main", "timelines", "t1", {"name": "T"}),
            AddEntity(world_id, "main", "locations", "l1", {"name": "L", "kind": "k"}),
            UpdateEntity(world_id, "main", "locations", "l1", {"description": "D"}),
            SetMemberRole(world_id, "bob", "editor"),
            UpdateWorld(world_id, {"name": "Renamed"}),
            RemoveEntity(world_id, "main", "locations", "l1"),
        ]
        positions: list[int] = []
        for command in commands:
            before = stored(app)
            outcome = app.handle(command, alice)
            assert stored(app) == before + 1
            assert outcome.position is not None
            assert outcome.position == notifications(app)[-1].id
            positions.append(outcome.position)
        assert positions == sorted(positions)
        assert len(set(positions)) == len(positions)

    def test_the_outcome_is_a_plain_value(
        self, app: WorldHistory, world_id: UUID, alice: Provenance
    ) -> None:
        outcome = app.handle(AddEntity(world_id, "main", "timelines", "t1", {"name": "T"}), alice)
        assert isinstance(outcome, Outcome)
        assert outcome == Outcome(
            resource={"id": "t1", "name": "T", "description": None, "version": 1},
            version=1,
            position=outcome.position,
        )

    def test_stored_events_carry_the_commands_provenance(
        self, app: WorldHistory, world_id: UUID
    ) -> None:
        bob = Provenance(actor="bob", correlation_id="req-7", causation_id="proposal-3")
        app.handle(AddEntity(world_id, "main", "timelines", "t1", {"name": "T"}), bob)
        (event,) = stream(app, branch_id(world_id, "main"))[-1:]
        assert event.meta == bob.as_meta()


class RacingHistory(WorldHistory):
    """A WorldHistory in which a rival writer appends between a command's load and its save."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.rivals: list[Command] = []
        self.decisions = 0
        self._racing = False

    def _decide(self, command: Command, undo: ExitStack) -> tuple[list[Any], dict[str, Any], int]:
        decided = super()._decide(command, undo)
        if self._racing:
            return decided
        self.decisions += 1
        if self.rivals:
            self._racing = True
            try:
                self.handle(self.rivals.pop(0), RIVAL)
            finally:
                self._racing = False
        return decided


def racing(env: Mapping[str, str] | None = None) -> tuple[RacingHistory, UUID]:
    """A racing application holding one world with timeline t1 on `main`."""
    app = RacingHistory(env)
    world_id = uuid4()
    owner = Provenance(actor="alice")
    app.handle(CreateWorld(world_id=world_id, owner_id="alice", name="Arda"), owner)
    app.handle(AddEntity(world_id, "main", "timelines", "t1", {"name": "T"}), owner)
    app.decisions = 0
    return app, world_id


class TestLostRaces:
    def test_reads_the_retry_budget_from_the_environment(self) -> None:
        assert WorldHistory().retries == 10
        assert WorldHistory(env={"COMMAND_RETRIES": "1"}).retries == 1

    def test_a_lost_race_is_retried_and_both_changes_are_recorded(self, alice: Provenance) -> None:
        app, world_id = racing()
        app.rivals.append(AddEntity(world_id, "main", "timelines", "rival", {"name": "R"}))
        before = stored(app)
        outcome = app.handle(AddEntity(world_id, "main", "timelines", "ours", {"name": "O"}), alice)
        assert app.decisions == 2
        assert stored(app) == before + 2
        assert outcome.version == 3
        assert outcome.position == notifications(app)[-1].id
        branch = app.branch(app.world(world_id), "main")
        assert branch.get("timelines", "rival")["version"] == 2
        assert branch.get("timelines", "ours")["version"] == 3
        actors = [e.meta["actor"] for e in stream(app, branch.id)][-2:]
        assert actors == ["rival", "alice"]

    def test_the_retry_decides_on_the_latest_state(self, alice: Provenance) -> None:
        app, world_id = racing()
        app.rivals.append(UpdateEntity(world_id, "main", "timelines", "t1", {"name": "Rival"}))
        before = stored(app)
        with pytest.raises(StaleVersion):
            app.handle(
                UpdateEntity(
                    world_id, "main", "timelines", "t1", {"name": "Ours"}, expected_version=1
                ),
                alice,
            )
        assert stored(app) == before + 1
        assert app.entity(world_id, "main", "timelines", "t1")["name"] == "Rival"

    def test_a_retry_without_a_precondition_applies_on_top(self, alice: Provenance) -> None:
        app, world_id = racing()
        app.rivals.append(UpdateEntity(world_id, "main", "timelines", "t1", {"name": "Rival"}))
        app.handle(UpdateEntity(world_id, "main", "timelines", "t1", {"name": "Ours"}), alice)
        entity = app.entity(world_id, "main", "timelines", "t1")
        assert (entity["name"], entity["version"]) == ("Ours", 3)

    def test_world_commands_are_retried_too(self, alice: Provenance) -> None:
        app, world_id = racing()
        app.rivals.append(SetMemberRole(world_id, "bob", "editor"))
        outcome = app.handle(UpdateWorld(world_id, {"name": "Middle-earth"}), alice)
        world = app.world(world_id)
        assert (world.name, world.members) == ("Middle-earth", {"alice": "owner", "bob": "editor"})
        assert outcome.version == world.version == 4
        assert app.decisions == 2

    def test_succeeds_on_the_last_allowed_attempt(self, alice: Provenance) -> None:
        app, world_id = racing({"COMMAND_RETRIES": "3"})
        app.rivals.extend(
            AddEntity(world_id, "main", "timelines", f"rival-{i}", {"name": "R"}) for i in range(2)
        )
        app.handle(AddEntity(world_id, "main", "timelines", "ours", {"name": "O"}), alice)
        assert app.decisions == 3
        assert app.entity(world_id, "main", "timelines", "ours")["version"] == 4

    def test_with_retries_exhausted_it_refuses_and_records_nothing_of_the_command(
        self, alice: Provenance
    ) -> None:
        app, world_id = racing({"COMMAND_RETRIES": "1"})
        app.rivals.append(AddEntity(world_id, "main", "timelines", "rival", {"name": "R"}))
        before = stored(app)
        with pytest.raises(ConcurrentWrite):
            app.handle(AddEntity(world_id, "main", "timelines", "ours", {"name": "O"}), alice)
        assert app.decisions == 1
        assert stored(app) == before + 1
        assert app.entity(world_id, "main", "timelines", "rival")["version"] == 2
        with pytest.raises(NotFound):
            app.entity(world_id, "main", "timelines", "ours")
        command_ids = {e.meta["command_id"] for e in stream(app, branch_id(world_id, "main"))}
        assert alice.command_id not in command_ids

    def test_losing_every_one_of_several_attempts_records_only_the_rivals(
        self, alice: Provenance
    ) -> None:
        app, world_id = racing({"COMMAND_RETRIES": "3"})
        app.rivals.extend(
            AddEntity(world_id, "main", "timelines", f"rival-{i}", {"name": "R"}) for i in range(3)
        )
        before = stored(app)
        with pytest.raises(ConcurrentWrite):
            app.handle(AddEntity(world_id, "main", "timelines", "ours", {"name": "O"}), alice)
        assert app.decisions == 3
        assert stored(app) == before + 3
        assert app.branch(app.world(world_id), "main").head_version == 4
        with pytest.raises(NotFound):
            app.entity(world_id, "main", "timelines", "ours")
        stored_events = stream(app, branch_id(world_id, "main"))
        assert [e.meta["actor"] for e in stored_events[-3:]] == ["rival"] * 3
        assert alice.command_id not in {e.meta["command_id"] for e in stored_events}
