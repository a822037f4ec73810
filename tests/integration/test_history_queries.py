"""The change log and entity history queries against a real PostgreSQL.

A world is built through the write side by two actors (metadata merge patches, a move, a
cascading removal, a reschedule, a fork and a revert that restores a removed element) and
projected; the queries are then checked against what the event store holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, create_engine

from commands.application import WorldHistory
from commands.messages import (
    AddEntity,
    Command,
    CreateWorld,
    ForkBranch,
    RemoveEntity,
    RevertBranch,
    UpdateEntity,
)
from commands.provenance import Provenance
from commands.world import branch_id
from pearl.migrate import upgrade
from projections.runner import ProjectionRunner
from queries import cursors
from queries import history as q
from queries.cursors import BadCursor

ALICE = str(uuid4())
BOB = str(uuid4())
L1_METADATA = {"climate": {"temp": "warm", "wet": True}, "moons": 1}


@dataclass
class Seeded:
    """A projected world: ids by label and the branch version each labelled command reached."""

    engine: Engine
    history: WorldHistory
    world_id: UUID
    ids: dict[str, str]
    versions: dict[str, int] = field(default_factory=dict)

    def id(self, label: str) -> UUID:
        return UUID(self.ids[label])

    def run(self, label: str, command: Command, actor: str, causation: str | None = None) -> None:
        provenance = Provenance(actor=actor, correlation_id=f"req-{label}", causation_id=causation)
        self.versions[label] = self.history.handle(command, provenance).version

    def project(self) -> None:
        ProjectionRunner(self.engine, self.history).catch_up()

    def log(self, branch: str = "main", **filters: Any) -> list[dict[str, Any]]:
        """The whole change log (one page of up to 1000)."""
        with self.engine.connect() as conn:
            items, next_cursor = q.change_log(
                conn, self.world_id, branch, q.ChangeFilters(**filters), limit=1000, cursor=None
            )
        assert next_cursor is None
        return items

    def entity(
        self, collection: str, label: str, branch: str = "main", as_of: int | None = None
    ) -> list[dict[str, Any]] | None:
        with self.engine.connect() as conn:
            found = q.entity_history(
                conn,
                self.world_id,
                branch,
                collection,
                self.id(label),
                limit=1000,
                cursor=None,
                as_of=as_of,
            )
        if found is None:
            return None
        items, next_cursor = found
        assert next_cursor is None
        return items


def build(seeded: Seeded) -> None:
    w, i = seeded.world_id, seeded.ids
    run = seeded.run
    run("create", CreateWorld(w, owner_id=ALICE, name="Aerth"), ALICE)
    run(
        "add L1",
        AddEntity(
            w,
            "main",
            "locations",
            i["L1"],
            {"name": "Harbour", "kind": "city", "metadata": L1_METADATA},
        ),
        ALICE,
    )
    run(
        "add E1",
        AddEntity(
            w, "main", "elements", i["E1"], {"kind": "character", "name": "Ilsa", "tags": ["hero"]}
        ),
        BOB,
    )
    run(
        "patch L1",
        UpdateEntity(
            w,
            "main",
            "locations",
            i["L1"],
            {
                "name": "Great Harbour",
                "metadata": {"climate": {"wet": None, "wind": "strong"}, "moons": None},
            },
        ),
        ALICE,
    )
    run(
        "update E1",
        UpdateEntity(
            w, "main", "elements", i["E1"], {"summary": "The hero", "tags": ["hero", "elf"]}
        ),
        BOB,
        causation="proposal-7",
    )
    run("fork alt", ForkBranch(w, "alt", "main"), ALICE)
    run("add T1", AddEntity(w, "main", "timelines", i["T1"], {"name": "First Age"}), ALICE)
    run(
        "add TE1",
        AddEntity(
            w,
            "main",
            "timeline_events",
            i["TE1"],
            {
                "timeline_id": i["T1"],
                "title": "Council",
                "start": {"year": 412},
                "location_id": i["L1"],
                "element_ids": [i["E1"]],
            },
        ),
        ALICE,
    )
    run(
        "add L2",
        AddEntity(w, "main", "locations", i["L2"], {"name": "Westmarch", "kind": "region"}),
        BOB,
    )
    run("move L1", UpdateEntity(w, "main", "locations", i["L1"], {"parent_id": i["L2"]}), BOB)
    run("remove E1", RemoveEntity(w, "main", "elements", i["E1"], cascade=True), ALICE)
    run(
        "reschedule TE1",
        UpdateEntity(
            w, "main", "timeline_events", i["TE1"], {"start": {"year": 413}, "end": {"year": 414}}
        ),
        ALICE,
    )
    run(
        "rename L1 on alt",
        UpdateEntity(w, "alt", "locations", i["L1"], {"name": "Alt Harbour"}),
        BOB,
    )
    run("revert", RevertBranch(w, "main", seeded.versions["remove E1"] - 2), ALICE)
    seeded.project()


@pytest.fixture(scope="module")
def seeded(database_factory: Callable[[str], str]) -> Iterator[Seeded]:
    """The story's world on a database of this module's own, projected once."""
    url = database_factory("pearl_history")
    upgrade(url)
    engine = create_engine(url)
    history = WorldHistory.on_database(url)
    labels = ("L1", "L2", "E1", "T1", "TE1")
    story = Seeded(engine, history, uuid4(), {label: str(uuid4()) for label in labels})
    build(story)
    yield story
    history.close()
    engine.dispose()


def versions(entries: list[dict[str, Any]]) -> list[int]:
    return [e["version"] for e in entries]


class TestTheChangeLog:
    def test_lists_every_event_of_the_branch_in_version_order(self, seeded: Seeded) -> None:
        log = seeded.log()
        stored = list(seeded.history.events.get(branch_id(seeded.world_id, "main")))
        assert versions(log) == list(range(len(stored)))
        assert [e["type"] for e in log] == [type(e).__name__ for e in stored]
        assert [e["hash"] for e in log] == [getattr(e, "hash", None) for e in stored]
        assert log[0]["type"] == "BranchStarted"

    def test_each_entry_carries_provenance_chain_and_data(self, seeded: Seeded) -> None:
        entry = seeded.log()[seeded.versions["update E1"]]
        assert entry["type"] == "ElementUpdated"
        assert entry["entity_id"] == seeded.ids["E1"]
        assert entry["collection"] == "elements"
        assert entry["branch"] == "main"
        assert entry["actor"] == BOB
        assert entry["correlation_id"] == "req-update E1"
        assert entry["causation_id"] == "proposal-7"
        assert UUID(entry["command_id"])
        assert entry["data"] == {
            "entity_id": seeded.ids["E1"],
            "changes": {"summary": "The hero", "tags": ["hero", "elf"]},
        }
        assert datetime.fromisoformat(entry["recorded_at"]).tzinfo is not None

    def test_each_entry_links_to_the_hash_of_the_one_before(self, seeded: Seeded) -> None:
        log = seeded.log()
        assert all(b["prev_hash"] == a["hash"] for a, b in pairwise(log))
        assert log[0]["prev_hash"] == "0" * 64

    def test_positions_grow_with_versions(self, seeded: Seeded) -> None:
        positions = [e["position"] for e in seeded.log()]
        assert positions == sorted(positions)
        assert len(set(positions)) == len(positions)

    def test_timeline_events_are_named_as_in_urls(self, seeded: Seeded) -> None:
        entry = seeded.log()[seeded.versions["add TE1"]]
        assert (entry["type"], entry["collection"]) == ("TimelineEventAdded", "timeline-events")


class TestFilters:
    def test_by_actor(self, seeded: Seeded) -> None:
        bobs = seeded.log(actor=BOB)
        v = seeded.versions
        assert versions(bobs) == [v["add E1"], v["update E1"], v["add L2"], v["move L1"]]
        assert {e["actor"] for e in bobs} == {BOB}

    def test_by_entity(self, seeded: Seeded) -> None:
        v = seeded.versions
        found = seeded.log(entity_id=seeded.id("L1"))
        assert versions(found) == [v["add L1"], v["patch L1"], v["move L1"]]

    def test_by_type(self, seeded: Seeded) -> None:
        found = seeded.log(type="ElementsUnlinked")
        assert versions(found) == [seeded.versions["remove E1"] - 1]
        assert found[0]["entity_id"] == seeded.ids["TE1"]

    def test_by_recorded_at_range_since_inclusive_until_exclusive(self, seeded: Seeded) -> None:
        log = seeded.log()
        since = datetime.fromisoformat(log[3]["recorded_at"])
        until = datetime.fromisoformat(log[7]["recorded_at"])
        found = seeded.log(since=since, until=until)
        expected = [e for e in log if since <= datetime.fromisoformat(e["recorded_at"]) < until]
        assert found == expected
        assert found[0] == log[3]
        assert log[7] not in found

    def test_after_a_version(self, seeded: Seeded) -> None:
        log = seeded.log()
        assert seeded.log(after_version=5) == [e for e in log if e["version"] > 5]
        assert seeded.log(after_version=5)[0]["version"] == 6

    def test_as_of_a_version(self, seeded: Seeded) -> None:
        assert versions(seeded.log(as_of=3)) == [0, 1, 2, 3]

    def test_filters_combine(self, seeded: Seeded) -> None:
        found = seeded.log(actor=BOB, entity_id=seeded.id("L1"))
        assert versions(found) == [seeded.versions["move L1"]]
        assert seeded.log(actor=BOB, type="ElementRemoved") == []


class TestPagination:
    def pages(self, seeded: Seeded, limit: int, **filters: Any) -> list[list[dict[str, Any]]]:
        pages: list[list[dict[str, Any]]] = []
        cursor = None
        with seeded.engine.connect() as conn:
            while True:
                items, cursor = q.change_log(
                    conn,
                    seeded.world_id,
                    "main",
                    q.ChangeFilters(**filters),
                    limit=limit,
                    cursor=cursor,
                )
                pages.append(items)
                if cursor is None:
                    return pages

    def test_pages_put_together_are_the_whole_log(self, seeded: Seeded) -> None:
        pages = self.pages(seeded, 4)
        assert [len(p) for p in pages[:-1]] == [4] * (len(pages) - 1)
        assert 0 < len(pages[-1]) <= 4
        assert [e for p in pages for e in p] == seeded.log()

    def test_filtered_pages_put_together_are_the_filtered_log(self, seeded: Seeded) -> None:
        pages = self.pages(seeded, 2, actor=ALICE)
        assert len(pages) > 2
        assert [e for p in pages for e in p] == seeded.log(actor=ALICE)

    def test_a_page_stays_the_same_while_the_branch_grows(
        self, database_factory: Callable[[str], str]
    ) -> None:
        url = database_factory("pearl_history_pages")
        upgrade(url)
        engine = create_engine(url)
        history = WorldHistory.on_database(url)
        try:
            world = Seeded(engine, history, uuid4(), {})
            world.run("create", CreateWorld(world.world_id, owner_id=ALICE, name="W"), ALICE)
            for n in range(3):
                add = AddEntity(world.world_id, "main", "timelines", str(uuid4()), {"name": f"{n}"})
                world.run(f"add {n}", add, ALICE)
            world.project()
            with engine.connect() as conn:
                first, cursor = q.change_log(
                    conn, world.world_id, "main", q.ChangeFilters(), limit=2, cursor=None
                )
                second, last = q.change_log(
                    conn, world.world_id, "main", q.ChangeFilters(), limit=2, cursor=cursor
                )
            assert (versions(first), versions(second), last) == ([0, 1], [2, 3], None)
            world.run(
                "add more",
                AddEntity(world.world_id, "main", "timelines", str(uuid4()), {"name": "x"}),
                ALICE,
            )
            world.project()
            with engine.connect() as conn:
                again, following = q.change_log(
                    conn, world.world_id, "main", q.ChangeFilters(), limit=2, cursor=cursor
                )
                later, _ = q.change_log(
                    conn, world.world_id, "main", q.ChangeFilters(), limit=2, cursor=following
                )
            assert again == second
            assert versions(later) == [4]
        finally:
            history.close()
            engine.dispose()

    @pytest.mark.parametrize(
        "cursor",
        [
            "not a cursor",
            cursors.encode("worlds", [1]),  # another list's
            cursors.encode("history", ["1"]),  # not a version
            cursors.encode("history", [1.5]),
            cursors.encode("history", [10**30]),  # beyond any version
            cursors.encode("history", [1, 2]),
        ],
    )
    def test_a_cursor_this_list_did_not_hand_out_is_refused(
        self, seeded: Seeded, cursor: str
    ) -> None:
        with seeded.engine.connect() as conn, pytest.raises(BadCursor):
            q.change_log(conn, seeded.world_id, "main", q.ChangeFilters(), limit=2, cursor=cursor)


class TestAForksChangeLog:
    def test_has_the_parents_changes_up_to_the_fork_point_then_its_own(
        self, seeded: Seeded
    ) -> None:
        at = seeded.versions["fork alt"]
        alt = seeded.log("alt")
        main = seeded.log("main")
        assert alt[: at + 1] == main[: at + 1]
        assert {e["branch"] for e in alt[: at + 1]} == {"main"}
        own = alt[at + 1 :]
        assert [(e["version"], e["type"], e["branch"]) for e in own] == [
            (at + 1, "LocationUpdated", "alt")
        ]

    def test_leaves_out_its_own_start_and_the_parents_later_changes(self, seeded: Seeded) -> None:
        types = [e["type"] for e in seeded.log("alt")]
        assert "BranchForked" not in types
        assert "TimelineAdded" not in types  # main added T1 after the fork point
        assert versions(seeded.log("alt")) == list(range(seeded.versions["fork alt"] + 2))


class TestEntityHistory:
    def test_a_creation_lists_every_field_it_set_with_before_null(self, seeded: Seeded) -> None:
        created = (seeded.entity("locations", "L1") or [])[0]
        assert created["type"] == "LocationAdded"
        assert created["version"] == seeded.versions["add L1"]
        assert created["changes"] == {
            "name": {"before": None, "after": "Harbour"},
            "kind": {"before": None, "after": "city"},
            "metadata": {"before": None, "after": L1_METADATA},
        }

    def test_an_update_lists_only_the_fields_that_differ(self, seeded: Seeded) -> None:
        patched = (seeded.entity("locations", "L1") or [])[1]
        assert patched["version"] == seeded.versions["patch L1"]
        assert patched["changes"] == {
            "name": {"before": "Harbour", "after": "Great Harbour"},
            "metadata": {
                "before": L1_METADATA,
                "after": {"climate": {"temp": "warm", "wind": "strong"}},
            },
        }

    def test_a_move_shows_the_parent_before_and_after(self, seeded: Seeded) -> None:
        moved = (seeded.entity("locations", "L1") or [])[2]
        assert moved["type"] == "LocationMoved"
        assert moved["changes"] == {"parent_id": {"before": None, "after": seeded.ids["L2"]}}

    def test_a_removal_lists_every_field_it_had_with_after_null(self, seeded: Seeded) -> None:
        entries = seeded.entity("elements", "E1") or []
        removed = next(e for e in entries if e["type"] == "ElementRemoved")
        assert removed["version"] == seeded.versions["remove E1"]
        assert removed["changes"] == {
            "kind": {"before": "character", "after": None},
            "name": {"before": "Ilsa", "after": None},
            "summary": {"before": "The hero", "after": None},
            "tags": {"before": ["hero", "elf"], "after": None},
            "metadata": {"before": {}, "after": None},
        }

    def test_a_restored_entity_starts_again_from_null(self, seeded: Seeded) -> None:
        entries = seeded.entity("elements", "E1") or []
        assert [e["type"] for e in entries] == [
            "ElementAdded",
            "ElementUpdated",
            "ElementRemoved",
            "ElementAdded",
        ]
        restored = entries[-1]
        assert seeded.versions["reschedule TE1"] < restored["version"] < seeded.versions["revert"]
        assert restored["changes"]["name"] == {"before": None, "after": "Ilsa"}
        assert restored["changes"]["tags"] == {"before": None, "after": ["hero", "elf"]}

    def test_links_and_reschedules_of_a_timeline_event_and_their_revert(
        self, seeded: Seeded
    ) -> None:
        entries = seeded.entity("timeline_events", "TE1") or []
        e1 = seeded.ids["E1"]
        assert [(e["type"], e["changes"]) for e in entries[1:]] == [
            ("ElementsUnlinked", {"element_ids": {"before": [e1], "after": []}}),
            (
                "TimelineEventRescheduled",
                {
                    "start": {"before": {"year": 412}, "after": {"year": 413}},
                    "end": {"before": None, "after": {"year": 414}},
                },
            ),
            (
                "TimelineEventRescheduled",
                {
                    "start": {"before": {"year": 413}, "after": {"year": 412}},
                    "end": {"before": {"year": 414}, "after": None},
                },
            ),
            ("ElementsLinked", {"element_ids": {"before": [], "after": [e1]}}),
        ]

    def test_each_entry_carries_its_provenance(self, seeded: Seeded) -> None:
        updated = (seeded.entity("elements", "E1") or [])[1]
        assert (updated["actor"], updated["correlation_id"], updated["causation_id"]) == (
            BOB,
            "req-update E1",
            "proposal-7",
        )
        assert updated["branch"] == "main"
        assert updated["position"] > 0

    def test_pages_carry_the_state_across_their_boundary(self, seeded: Seeded) -> None:
        whole = seeded.entity("locations", "L1") or []
        pages: list[dict[str, Any]] = []
        cursor = None
        with seeded.engine.connect() as conn:
            while True:
                found = q.entity_history(
                    conn,
                    seeded.world_id,
                    "main",
                    "locations",
                    seeded.id("L1"),
                    limit=1,
                    cursor=cursor,
                )
                assert found is not None
                items, cursor = found
                assert len(items) == 1
                pages.extend(items)
                if cursor is None:
                    break
        assert pages == whole
        assert len(pages) == 3

    def test_an_entity_that_never_existed_has_no_history(self, seeded: Seeded) -> None:
        seeded.ids["nobody"] = str(uuid4())
        assert seeded.entity("locations", "nobody") is None

    def test_an_entity_of_another_collection_has_no_history_here(self, seeded: Seeded) -> None:
        assert seeded.entity("elements", "L1") is None

    def test_as_of_a_version_before_its_creation_it_has_no_history(self, seeded: Seeded) -> None:
        assert seeded.entity("locations", "L2", as_of=seeded.versions["add L2"] - 1) is None
        as_of = seeded.entity("locations", "L1", as_of=seeded.versions["patch L1"])
        assert versions(as_of or []) == [seeded.versions["add L1"], seeded.versions["patch L1"]]


class TestAnEntitysHistoryOnAFork:
    def test_has_the_parents_changes_up_to_the_fork_point_then_its_own(
        self, seeded: Seeded
    ) -> None:
        entries = seeded.entity("locations", "L1", branch="alt") or []
        v = seeded.versions
        assert versions(entries) == [v["add L1"], v["patch L1"], v["fork alt"] + 1]
        assert [e["branch"] for e in entries] == ["main", "main", "alt"]
        assert entries[-1]["changes"] == {
            "name": {"before": "Great Harbour", "after": "Alt Harbour"}
        }

    def test_an_entity_created_on_the_parent_after_the_fork_point_is_unknown(
        self, seeded: Seeded
    ) -> None:
        assert seeded.entity("timelines", "T1", branch="alt") is None
        assert seeded.entity("timelines", "T1", branch="main") is not None
