"""The read-model projection against a real PostgreSQL: what it writes, and how it tracks.

A small world exercising every kind of event (the four collections, merge-patched metadata,
moves, reschedules, links and unlinks, cascading removals, member changes and a calendar
change) is built through the write side and projected; the read tables are then checked
against the write model, event by event where versions matter. Tables built live, event by
event (also through a fork, a merge and a revert), must equal a rebuild; positions must
advance batch by batch, atomically; a follower must apply new events promptly and give up
its advisory lock when it stops.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, create_engine, func, select, text

from commands import branch_events as ev
from commands.application import Outcome, WorldHistory
from commands.chain import GENESIS_HASH, digest_of, event_data
from commands.messages import (
    AddEntity,
    Command,
    CreateWorld,
    ForkBranch,
    MergeBranch,
    RemoveEntity,
    RemoveMember,
    RevertBranch,
    SetMemberRole,
    UpdateEntity,
    UpdateWorld,
)
from commands.provenance import Provenance
from commands.world import World, branch_id
from pearl.migrate import upgrade
from projections import runner as runner_module
from projections import tables as t
from projections.read_model import ReadModel
from projections.runner import ProjectionRunner
from queries.content import get_entity, resource
from tests.integration.readside import differences, dump_read_tables, poll

COLLECTIONS = ("locations", "elements", "timelines", "timeline_events")

NEW_CALENDAR = {
    "months": [{"name": f"Moon {i}", "days": 30} for i in range(1, 13)],
    "year_zero": True,
    "eras": [{"name": "Age of Sail", "start_year": 100}],
}


@dataclass
class Story:
    """A world built command by command, with what each command answered."""

    world_id: UUID
    owner: str
    ids: dict[str, str]
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    @property
    def branch_id(self) -> UUID:
        return branch_id(self.world_id, "main")

    def version(self, label: str) -> int:
        """The version a command answered: the branch's for content, the world's otherwise."""
        return self.outcomes[label].version


def new_story() -> Story:
    names = ["L1", "L2", "L3", "L4", "E1", "E2", "E3", "E4", "T1", "T2"]
    names += ["TE1", "TE2", "TE3", "TE4", "E5", "editor", "viewer", "guest"]
    return Story(world_id=uuid4(), owner=str(uuid4()), ids={n: str(uuid4()) for n in names})


def script(s: Story) -> list[tuple[str, Command]]:
    """Every kind of command, in an order that makes each of them record events."""
    i, w = s.ids, s.world_id

    def add(collection: str, key: str, /, **fields: Any) -> tuple[str, Command]:
        return f"add {key}", AddEntity(w, "main", collection, i[key], fields)

    def change(collection: str, key: str, label: str, /, **changes: Any) -> tuple[str, Command]:
        return label, UpdateEntity(w, "main", collection, i[key], changes)

    def remove(collection: str, key: str, cascade: bool = False) -> tuple[str, Command]:
        return f"remove {key}", RemoveEntity(w, "main", collection, i[key], cascade=cascade)

    return [
        ("create", CreateWorld(w, owner_id=s.owner, name="Aerth", description="A small world")),
        ("add editor", SetMemberRole(w, i["editor"], "editor")),
        ("add viewer", SetMemberRole(w, i["viewer"], "viewer")),
        ("viewer becomes auditor", SetMemberRole(w, i["viewer"], "auditor")),
        ("add guest", SetMemberRole(w, i["guest"], "viewer")),
        ("remove guest", RemoveMember(w, i["guest"])),
        ("rename world", UpdateWorld(w, {"name": "Aerth II", "description": "Renamed"})),
        add(
            "locations",
            "L1",
            name="Aerth",
            kind="planet",
            metadata={"climate": {"temp": "warm", "wet": True}, "moons": 1},
        ),
        add("locations", "L2", name="Westmarch", kind="region", parent_id=i["L1"]),
        add("locations", "L3", name="Harbour", kind="city", parent_id=i["L2"], description="Port"),
        add("locations", "L4", name="Selene", kind="moon"),
        add(
            "elements",
            "E1",
            kind="character",
            name="Ilsa",
            tags=["hero", "elf"],
            metadata={"age": 300},
        ),
        add("elements", "E2", kind="faction", name="Guild", tags=["guild"], summary="Traders"),
        add("elements", "E3", kind="artifact", name="Lantern"),
        add("timelines", "T1", name="First Age"),
        add("timelines", "T2", name="Second Age", description="After the fall"),
        add(
            "timeline_events",
            "TE1",
            timeline_id=i["T1"],
            title="Council",
            start={"year": 412, "month": 11, "day": 2},
            end={"year": 413},
            location_id=i["L3"],
            element_ids=[i["E1"], i["E2"]],
            metadata={"source": "annals"},
        ),
        add("timeline_events", "TE2", timeline_id=i["T1"], title="Founding", start={"year": -130}),
        add(
            "timeline_events",
            "TE3",
            timeline_id=i["T2"],
            title="Long war",
            start={"year": 1, "month": 1, "day": 1},
            end={"year": 5},
            location_id=i["L2"],
            element_ids=[i["E3"]],
        ),
        add(
            "timeline_events",
            "TE4",
            timeline_id=i["T1"],
            title="Eclipse",
            start={"year": 20, "month": 6},
            location_id=i["L4"],
        ),
        change(
            "locations",
            "L1",
            "patch L1 metadata",
            name="Great Aerth",
            metadata={"climate": {"wet": None, "wind": "strong"}, "moons": None, "rings": [1, 2]},
        ),
        change(
            "elements",
            "E1",
            "update E1",
            summary="The hero",
            tags=["hero"],
            metadata={"age": 301, "title": "Lady"},
        ),
        change("timelines", "T1", "describe T1", description="The first age"),
        change("timeline_events", "TE1", "retitle TE1", title="The Council", metadata={"x": 1}),
        change("locations", "L3", "move L3 under L4", parent_id=i["L4"]),
        change("locations", "L2", "rename and unparent L2", name="West March", parent_id=None),
        change(
            "timeline_events",
            "TE1",
            "reschedule TE1",
            start={"year": 412, "month": 11, "day": 3},
            end=None,
        ),
        change("timeline_events", "TE2", "extend TE2", end={"year": -120}),
        change("timeline_events", "TE1", "relink TE1", element_ids=[i["E2"], i["E3"]]),
        change("timeline_events", "TE2", "link TE2", element_ids=[i["E1"]]),
        change("timeline_events", "TE4", "relocate TE4", location_id=i["L2"]),
        change("timeline_events", "TE3", "unlocate TE3", location_id=None),
        ("define calendar", UpdateWorld(w, {"calendar": NEW_CALENDAR})),
        remove("elements", "E1", cascade=True),
        remove("locations", "L4", cascade=True),
        remove("timelines", "T2", cascade=True),
        remove("timeline_events", "TE2"),
        add("elements", "E4", kind="concept", name="Tide", metadata={"deep": {"a": [1]}}),
        change("timeline_events", "TE4", "retitle TE4", title="Great Eclipse"),
    ]


def branching_script(s: Story) -> list[tuple[str, Command]]:
    """After `script`: a fork at an older version, changes on it, a merge back and a revert."""
    i, w = s.ids, s.world_id
    return [
        ("fork alt", ForkBranch(w, "alt", "main", at_version=s.version("unlocate TE3"))),
        ("alt: rename E2", UpdateEntity(w, "alt", "elements", i["E2"], {"name": "Alt guild"})),
        ("alt: add E5", AddEntity(w, "alt", "elements", i["E5"], {"kind": "x", "name": "Five"})),
        ("alt: move L2", UpdateEntity(w, "alt", "locations", i["L2"], {"parent_id": i["L1"]})),
        ("merge alt into main", MergeBranch(w, target="main", source="alt")),
        ("revert main", RevertBranch(w, "main", to_version=s.version("retitle TE4"))),
        ("alt: retitle TE2", UpdateEntity(w, "alt", "timeline_events", i["TE2"], {"title": "F"})),
    ]


def run_script(
    history: WorldHistory,
    story: Story,
    after: Callable[[], Any] | None = None,
    steps: Callable[[Story], list[tuple[str, Command]]] = script,
) -> Story:
    """Send every command of `steps` as the owner; call `after()` after each."""
    actor = Provenance(actor=story.owner, correlation_id="req-build")
    for label, command in steps(story):
        story.outcomes[label] = history.handle(command, actor)
        if after is not None:
            after()
    return story


def fresh_database(database_factory: Callable[[str], str]) -> str:
    url = database_factory("pearl_projection")
    upgrade(url)
    return url


def current_entities(
    history: WorldHistory, story: Story, name: str = "main"
) -> dict[str, dict[str, Any]]:
    """Per collection, the write model's entities of one of the story's branches, by id."""
    branch = history.branch(history.world(story.world_id), name)
    return {
        c: {i: history.entity(story.world_id, name, c, i) for i in branch.entities[c]}
        for c in COLLECTIONS
    }


def stored_branch_events(history: WorldHistory, story: Story) -> list[Any]:
    return list(history.events.get(story.branch_id))


@dataclass
class Projected:
    """A database holding the story's world, projected by catch_up."""

    engine: Engine
    history: WorldHistory
    story: Story


@pytest.fixture(scope="module")
def projected(database_factory: Callable[[str], str]) -> Iterator[Projected]:
    """The story's world, built on a database of this module's own and caught up once."""
    url = fresh_database(database_factory)
    engine = create_engine(url)
    history = WorldHistory.on_database(url)
    story = run_script(history, new_story())
    ProjectionRunner(engine, history).catch_up()
    yield Projected(engine, history, story)
    history.close()
    engine.dispose()


@pytest.fixture
def fresh(database_factory: Callable[[str], str]) -> Iterator[tuple[Engine, WorldHistory]]:
    """An engine and application on an empty migrated database of this test's own."""
    url = fresh_database(database_factory)
    engine = create_engine(url)
    history = WorldHistory.on_database(url)
    yield engine, history
    history.close()
    engine.dispose()


def event_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM pearl_events")).scalar_one())


def rows_of(engine: Engine, table: Any, *where: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).where(*where)).mappings()]


class TestCurrentRows:
    def test_each_collection_has_a_current_row_for_exactly_the_entities_that_exist(
        self, projected: Projected
    ) -> None:
        expected = current_entities(projected.history, projected.story)
        for collection in COLLECTIONS:
            table = t.CONTENT[collection]
            rows = rows_of(
                projected.engine,
                table,
                table.c.branch_id == projected.story.branch_id,
                table.c.valid_to.is_(None),
            )
            assert sorted(str(r["id"]) for r in rows) == sorted(expected[collection])

    def test_current_rows_answer_exactly_what_the_write_model_says(
        self, projected: Projected
    ) -> None:
        expected = current_entities(projected.history, projected.story)
        with projected.engine.connect() as conn:
            for collection, entities in expected.items():
                for entity_id, entity in entities.items():
                    found = get_entity(
                        conn, projected.story.branch_id, collection, UUID(entity_id), None
                    )
                    assert found == entity, (collection, entity_id)

    def test_the_script_left_something_in_every_collection_and_removed_the_rest(
        self, projected: Projected
    ) -> None:
        expected = current_entities(projected.history, projected.story)
        ids = projected.story.ids
        assert set(expected["locations"]) == {ids["L1"], ids["L2"]}
        assert set(expected["elements"]) == {ids["E2"], ids["E3"], ids["E4"]}
        assert set(expected["timelines"]) == {ids["T1"]}
        assert set(expected["timeline_events"]) == {ids["TE1"], ids["TE4"]}

    def test_merge_patched_metadata_is_stored_merged(self, projected: Projected) -> None:
        with projected.engine.connect() as conn:
            aerth = get_entity(
                conn,
                projected.story.branch_id,
                "locations",
                UUID(projected.story.ids["L1"]),
                None,
            )
        assert aerth is not None
        assert aerth["metadata"] == {"climate": {"temp": "warm", "wind": "strong"}, "rings": [1, 2]}

    def test_in_world_ordinals_follow_the_calendar_defined_last(self, projected: Projected) -> None:
        # The new calendar: 12 months of 30 days and a year 0, so year Y starts at day 360*Y.
        table = t.timeline_events
        rows = rows_of(
            projected.engine,
            table,
            table.c.branch_id == projected.story.branch_id,
            table.c.id == UUID(projected.story.ids["TE4"]),
        )
        assert rows
        for row in rows:  # old versions are re-sorted too
            assert (row["start_ordinal"], row["end_ordinal"]) == (
                20 * 360 + 5 * 30,
                20 * 360 + 6 * 30 - 1,
            )


class TestVersionedRows:
    def test_every_entity_has_one_row_per_change_covering_its_lifetime_without_gaps(
        self, projected: Projected
    ) -> None:
        story = projected.story
        changes: dict[tuple[str, str], list[int]] = {}
        removed: dict[tuple[str, str], int] = {}
        for event in stored_branch_events(projected.history, story):
            if not isinstance(event, ev.ContentEvent):
                continue
            key = (event.collection, event.entity_id)
            version = event.originator_version - 1  # main starts at version 0
            if isinstance(event, ev.EntityRemoved):
                removed[key] = version
            else:
                changes.setdefault(key, []).append(version)
        assert len(changes) == 14
        for (collection, entity_id), versions in changes.items():
            table = t.CONTENT[collection]
            rows = rows_of(
                projected.engine,
                table,
                table.c.branch_id == story.branch_id,
                table.c.id == UUID(entity_id),
            )
            spans = sorted((r["valid_from"], r["valid_to"]) for r in rows)
            ends = [*versions[1:], removed.get((collection, entity_id))]
            assert spans == list(zip(versions, ends, strict=True)), (collection, entity_id)

    def test_every_row_holds_the_entity_as_the_write_model_had_it_at_that_version(
        self, projected: Projected
    ) -> None:
        story = projected.story
        checked = 0
        for collection in COLLECTIONS:
            table = t.CONTENT[collection]
            rows = rows_of(projected.engine, table, table.c.branch_id == story.branch_id)
            for row in rows:
                then: Any = projected.history.repository.get(
                    story.branch_id, version=row["valid_from"] + 1
                )
                assert resource(collection, row) == then.entities[collection][str(row["id"])]
                checked += 1
        assert checked > 30

    def test_an_update_closes_the_old_row_at_the_version_of_the_update(
        self, projected: Projected
    ) -> None:
        story = projected.story
        table = t.locations
        rows = rows_of(
            projected.engine,
            table,
            table.c.branch_id == story.branch_id,
            table.c.id == UUID(story.ids["L1"]),
        )
        by_start = {r["valid_from"]: r for r in rows}
        old = by_start[story.version("add L1")]
        new = by_start[story.version("patch L1 metadata")]
        assert old["valid_to"] == story.version("patch L1 metadata")
        assert (old["name"], old["metadata"]) == (
            "Aerth",
            {"climate": {"temp": "warm", "wet": True}, "moons": 1},
        )
        assert new["valid_to"] is None
        assert new["name"] == "Great Aerth"
        assert new["created_seq"] == old["created_seq"] == story.outcomes["add L1"].position

    def test_a_cascading_removal_closes_the_rows_of_everything_it_removed(
        self, projected: Projected
    ) -> None:
        story = projected.story
        removal = story.version("remove T2")
        table = t.timeline_events
        rows = rows_of(
            projected.engine,
            table,
            table.c.branch_id == story.branch_id,
            table.c.id == UUID(story.ids["TE3"]),
        )
        last = max(rows, key=lambda r: r["valid_from"])
        # TE3's removal is the event just before T2's own removal.
        assert last["valid_to"] == removal - 1
        timeline = rows_of(
            projected.engine,
            t.timelines,
            t.timelines.c.branch_id == story.branch_id,
            t.timelines.c.id == UUID(story.ids["T2"]),
        )
        assert [r["valid_to"] for r in timeline] == [removal]


class TestChangeLog:
    def test_there_is_exactly_one_change_row_per_stored_event(self, projected: Projected) -> None:
        with projected.engine.connect() as conn:
            event_ids = conn.execute(text("SELECT id FROM pearl_events ORDER BY id")).scalars()
            positions = conn.execute(
                select(t.changes.c.position).order_by(t.changes.c.position)
            ).scalars()
            assert list(positions) == list(event_ids)

    def test_each_change_row_describes_its_event(self, projected: Projected) -> None:
        history, story = projected.history, projected.story
        notifications = history.recorder.select_notifications(start=1, limit=10_000)
        rows = {
            r["position"]: r
            for r in rows_of(projected.engine, t.changes, t.changes.c.world_id == story.world_id)
        }
        assert len(rows) == len(notifications)
        for notification in notifications:
            event: Any = history.mapper.to_domain_event(notification)
            row = rows[notification.id]
            is_world = isinstance(event, World.Event)
            assert row["world_id"] == story.world_id
            assert row["branch_id"] == (None if is_world else story.branch_id)
            assert row["stream_version"] == event.originator_version
            assert row["version"] == event.originator_version - (0 if is_world else 1)
            assert row["type"] == type(event).__name__
            entity_id = getattr(event, "entity_id", None)
            assert row["entity_id"] == (UUID(entity_id) if entity_id else None)
            assert row["collection"] == (getattr(event, "collection", None) or None)
            assert row["actor"] == story.owner
            assert row["correlation_id"] == "req-build"
            assert row["command_id"] == event.meta["command_id"]
            assert row["recorded_at"] == event.timestamp
            assert row["hash"] == event.hash == digest_of(event)
            assert row["prev_hash"] == event.prev_hash
            assert row["data"] == event_data(event)

    def test_each_stream_chains_from_genesis_through_its_rows_in_order(
        self, projected: Projected
    ) -> None:
        story = projected.story
        changes = t.changes.c
        branch_rows = rows_of(projected.engine, t.changes, changes.branch_id == story.branch_id)
        world_rows = rows_of(
            projected.engine,
            t.changes,
            changes.world_id == story.world_id,
            changes.branch_id.is_(None),
        )
        for rows, first_version in ((branch_rows, 0), (world_rows, 1)):
            rows.sort(key=lambda r: r["position"])
            assert len(rows) > 5
            assert rows[0]["prev_hash"] == GENESIS_HASH
            assert [r["version"] for r in rows] == list(
                range(first_version, first_version + len(rows))
            )
            for before, after in itertools.pairwise(rows):
                assert after["prev_hash"] == before["hash"]

    def test_a_command_answers_the_version_and_position_of_its_last_change_row(
        self, projected: Projected
    ) -> None:
        story = projected.story
        rows = {
            r["position"]: r
            for r in rows_of(projected.engine, t.changes, t.changes.c.world_id == story.world_id)
        }
        for label, command in script(story):
            outcome = story.outcomes[label]
            assert outcome.position in rows, label
            if isinstance(command, (AddEntity, UpdateEntity, RemoveEntity)):
                assert rows[outcome.position]["version"] == outcome.version, label
                assert rows[outcome.position]["branch_id"] == story.branch_id, label


class TestWorldBranchAndMembers:
    def test_the_branch_row_has_the_head_version_of_the_write_model(
        self, projected: Projected
    ) -> None:
        history, story = projected.history, projected.story
        branch = history.branch(history.world(story.world_id), "main")
        [row] = rows_of(projected.engine, t.branches, t.branches.c.world_id == story.world_id)
        assert row["branch_id"] == story.branch_id
        assert row["name"] == "main"
        assert row["head_version"] == branch.head_version == story.version("retitle TE4")
        assert row["base_version"] == 0
        assert row["forked_from"] is None

    def test_members_are_the_write_model_members(self, projected: Projected) -> None:
        history, story = projected.history, projected.story
        rows = rows_of(projected.engine, t.members, t.members.c.world_id == story.world_id)
        found = {str(r["user_id"]): r["role"] for r in rows}
        assert found == history.world(story.world_id).members
        assert found == {
            story.owner: "owner",
            story.ids["editor"]: "editor",
            story.ids["viewer"]: "auditor",
        }

    def test_the_world_row_is_the_write_model_world(self, projected: Projected) -> None:
        history, story = projected.history, projected.story
        world = history.world(story.world_id)
        [row] = rows_of(projected.engine, t.worlds, t.worlds.c.id == story.world_id)
        assert row["name"] == world.name == "Aerth II"
        assert row["description"] == world.description == "Renamed"
        assert row["calendar"] == world.calendar == NEW_CALENDAR
        assert row["version"] == world.version
        assert row["default_branch"] == "main"
        assert row["created_at"] == world.created_on
        with projected.engine.connect() as conn:
            last = conn.execute(
                select(func.max(t.changes.c.position)).where(t.changes.c.world_id == story.world_id)
            ).scalar_one()
        assert row["last_position"] == last == story.outcomes["retitle TE4"].position


class TestLiveAndRebuiltTablesAgree:
    def test_projecting_event_by_event_after_each_command_equals_a_rebuild(
        self, fresh: tuple[Engine, WorldHistory]
    ) -> None:
        engine, history = fresh
        live = ProjectionRunner(engine, history, batch_size=1)
        applied: list[int] = []
        run_script(history, new_story(), after=lambda: applied.append(live.catch_up()))
        assert sum(applied) == event_count(engine)
        assert max(applied) > 1  # some commands record several events, applied one by one
        built_live = dump_read_tables(engine)

        rebuilt = ProjectionRunner(engine, history).rebuild()
        assert rebuilt == event_count(engine)
        built_again = dump_read_tables(engine)

        assert differences(built_live, built_again) == {}
        assert built_live == built_again
        assert len(built_live["rm_changes"]) == event_count(engine)

    def test_a_fork_a_merge_and_a_revert_project_the_same_either_way(
        self, fresh: tuple[Engine, WorldHistory]
    ) -> None:
        engine, history = fresh
        live = ProjectionRunner(engine, history, batch_size=1)
        story = run_script(history, new_story(), after=live.catch_up)
        run_script(history, story, after=live.catch_up, steps=branching_script)
        built_live = dump_read_tables(engine)
        ProjectionRunner(engine, history).rebuild()
        assert differences(built_live, dump_read_tables(engine)) == {}
        assert len(built_live["rm_branches"]) == 2

        alt = branch_id(story.world_id, "alt")
        with engine.connect() as conn:
            for name, stream in (("main", story.branch_id), ("alt", alt)):
                for collection, entities in current_entities(history, story, name).items():
                    table = t.CONTENT[collection]
                    rows = conn.execute(
                        select(table).where(table.c.branch_id == stream, table.c.valid_to.is_(None))
                    ).mappings()
                    found = {str(r["id"]): resource(collection, r) for r in rows}
                    assert found == entities, (name, collection)

    def test_two_worlds_interleaved_project_the_same_either_way(
        self, fresh: tuple[Engine, WorldHistory]
    ) -> None:
        engine, history = fresh
        first, second = new_story(), new_story()
        steps = list(zip(script(first), script(second), strict=True))
        live = ProjectionRunner(engine, history, batch_size=2)
        for (_, a), (_, b) in steps:
            history.handle(a, Provenance(actor=first.owner))
            history.handle(b, Provenance(actor=second.owner))
            live.run_batch()
        live.catch_up()
        built_live = dump_read_tables(engine)
        ProjectionRunner(engine, history, batch_size=7).rebuild()
        assert differences(built_live, dump_read_tables(engine)) == {}

    def test_a_rebuild_beside_a_running_follower_still_applies_each_event_once(
        self, fresh: tuple[Engine, WorldHistory]
    ) -> None:
        engine, history = fresh
        run_script(history, new_story())
        ProjectionRunner(engine, history).catch_up()
        expected = dump_read_tables(engine)
        follower = ProjectionRunner(engine, history, batch_size=3)
        stop = threading.Event()
        thread = threading.Thread(target=follower.follow, args=(stop, 0.05), daemon=True)
        thread.start()
        try:
            ProjectionRunner(engine, history, batch_size=4).rebuild()
            assert poll(lambda: follower.position() == follower.head(), timeout=10)
            assert differences(expected, dump_read_tables(engine)) == {}
        finally:
            stop.set()
            thread.join(timeout=10)


class TestPositionTracking:
    def test_a_batch_applies_at_most_batch_size_events_and_records_the_last_id(
        self, fresh: tuple[Engine, WorldHistory]
    ) -> None:
        engine, history = fresh
        run_script(history, new_story())
        ids = [n.id for n in history.recorder.select_notifications(start=1, limit=10_000)]
        runner = ProjectionRunner(engine, history, batch_size=5)
        assert runner.position() == 0
        assert runner.run_batch() == 5
        assert runner.position() == ids[4]
        assert runner.run_batch() == 5
        assert runner.position() == ids[9]
        with engine.connect() as conn:
            logged = conn.execute(select(t.changes.c.position).order_by("position")).scalars()
            assert list(logged) == ids[:10]

    def test_catching_up_twice_applies_nothing_twice(
        self, fresh: tuple[Engine, WorldHistory]
    ) -> None:
        engine, history = fresh
        run_script(history, new_story())
        runner = ProjectionRunner(engine, history, batch_size=7)
        head = runner.head()
        assert runner.catch_up() == head
        assert runner.position() == head
        before = dump_read_tables(engine)
        assert runner.catch_up() == 0
        assert ProjectionRunner(engine, history, batch_size=1).catch_up() == 0
        assert runner.run_batch() == 0
        assert dump_read_tables(engine) == before
        assert runner.position() == head

    def test_two_runners_catching_up_at_once_apply_each_event_once(
        self, fresh: tuple[Engine, WorldHistory]
    ) -> None:
        engine, history = fresh
        run_script(history, new_story())
        runners = [ProjectionRunner(engine, history, batch_size=3) for _ in range(2)]
        errors: list[BaseException] = []

        def catch_up(runner: ProjectionRunner) -> None:
            try:
                runner.catch_up()
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=catch_up, args=(r,)) for r in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        with engine.connect() as conn:
            logged = conn.execute(select(t.changes.c.position).order_by("position")).scalars()
            events = conn.execute(text("SELECT id FROM pearl_events ORDER BY id")).scalars()
            assert list(logged) == list(events)

    def test_catch_up_reports_progress_after_each_batch(
        self, fresh: tuple[Engine, WorldHistory]
    ) -> None:
        engine, history = fresh
        run_script(history, new_story())
        runner = ProjectionRunner(engine, history, batch_size=10)
        head = runner.head()
        reports: list[tuple[int, int]] = []
        runner.catch_up(lambda position, seen: reports.append((position, seen)))
        assert [p for p, _ in reports] == sorted(p for p, _ in reports)
        assert reports[-1] == (head, head)
        assert len(reports) == event_count(engine) // 10 + 1

    def test_a_batch_that_fails_half_way_leaves_no_trace(
        self, fresh: tuple[Engine, WorldHistory], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        engine, history = fresh
        run_script(history, new_story())
        runner = ProjectionRunner(engine, history, batch_size=10)
        runner.run_batch()
        before = dump_read_tables(engine)

        class Failing(ReadModel):
            applied = 0

            def apply(self, position: int, event: Any) -> None:
                Failing.applied += 1
                if Failing.applied == 6:
                    raise RuntimeError("the projector died here")
                super().apply(position, event)

        monkeypatch.setattr(runner_module, "ReadModel", Failing)
        with pytest.raises(RuntimeError, match="died here"):
            runner.run_batch()
        assert dump_read_tables(engine) == before
        monkeypatch.undo()
        runner.catch_up()
        after = dump_read_tables(engine)
        ProjectionRunner(engine, history).rebuild()
        assert differences(after, dump_read_tables(engine)) == {}


ADVISORY_HOLDERS = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND objid = :key AND objsubid = 1"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def lock_holders(runner: ProjectionRunner) -> int:
    """How many sessions on the runner's database hold its projection's advisory lock."""
    with runner.engine.connect() as conn:
        return int(conn.execute(ADVISORY_HOLDERS, {"key": runner.lock_key}).scalar_one())


def backends(engine: Engine) -> list[tuple[str, str]]:
    """(state, last query) of every other session on the engine's database."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT state, query FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).all()
    return [(str(state), str(query)) for state, query in rows]


@dataclass
class Follower:
    runner: ProjectionRunner
    story: Story
    stop: threading.Event
    thread: threading.Thread


class TestFollowing:
    @pytest.fixture
    def follower(self, fresh: tuple[Engine, WorldHistory]) -> Iterator[Follower]:
        """A runner following the log in a thread (2 s idle wait); stopped after the test."""
        engine, history = fresh
        story = new_story()
        history.handle(
            CreateWorld(story.world_id, owner_id=story.owner, name="Live"),
            Provenance(actor=story.owner),
        )
        runner = ProjectionRunner(engine, history)
        stop = threading.Event()
        thread = threading.Thread(target=runner.follow, args=(stop, 2.0), daemon=True)
        thread.start()
        try:
            assert poll(lambda: runner.position() == runner.head(), timeout=10)
            yield Follower(runner, story, stop, thread)
        finally:
            stop.set()
            thread.join(timeout=10)

    def test_a_new_event_is_applied_within_a_fraction_of_a_second(self, follower: Follower) -> None:
        runner, story = follower.runner, follower.story
        owner = Provenance(actor=story.owner)
        for _ in range(3):
            started = time.monotonic()
            outcome = runner.history.handle(
                SetMemberRole(story.world_id, str(uuid4()), "viewer"), owner
            )
            position = outcome.position
            assert position is not None

            def applied(position: int = position) -> bool:
                return runner.position() >= position

            assert poll(applied, timeout=10)
            latency = time.monotonic() - started
            # Woken by NOTIFY, not by the end of its 2 s idle wait.
            assert latency < 1.0, f"applied {latency:.2f}s after it was recorded"

    def test_the_listening_connection_is_not_left_idle_in_a_transaction(
        self, follower: Follower
    ) -> None:
        sessions = backends(follower.runner.engine)
        assert ("idle", "LISTEN pearl_events") in sessions or (
            "idle in transaction",
            "LISTEN pearl_events",
        ) in sessions
        assert ("idle in transaction", "LISTEN pearl_events") not in sessions

    def test_a_second_follower_stands_by_while_the_first_holds_the_lock(
        self, follower: Follower
    ) -> None:
        runner = follower.runner
        second = ProjectionRunner(runner.engine, runner.history)
        stop = threading.Event()
        thread = threading.Thread(target=second.follow, args=(stop, 0.05), daemon=True)
        thread.start()
        try:
            assert poll(
                lambda: any(
                    q.startswith("SELECT pg_try_advisory_lock") for _, q in backends(runner.engine)
                ),
                timeout=10,
            )
            assert lock_holders(runner) == 1
            assert thread.is_alive()
            listening = [q for _, q in backends(runner.engine) if q.startswith("LISTEN")]
            assert len(listening) == 1
        finally:
            stop.set()
            thread.join(timeout=10)
        assert not thread.is_alive()

    def test_stopping_a_follower_releases_the_advisory_lock(
        self, fresh: tuple[Engine, WorldHistory]
    ) -> None:
        engine, history = fresh
        runner = ProjectionRunner(engine, history)
        stop = threading.Event()
        thread = threading.Thread(target=runner.follow, args=(stop, 0.05), daemon=True)
        thread.start()
        assert poll(lambda: lock_holders(runner) == 1, timeout=10)
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()
        # Another projector process can only take over once the lock is released.
        assert lock_holders(runner) == 0
