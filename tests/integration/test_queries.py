"""Queries over the projected read tables: filters, in-world ranges, pages, time travel, search.

A world is seeded through the write side and projected once; every query is then checked
against what the seed says it must answer. Plus read-your-writes waiting and the Redis cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import pytest
import redis
from sqlalchemy import Connection, Engine, create_engine

from commands.application import Outcome, WorldHistory
from commands.dates import DEFAULT_CALENDAR, Calendar, parse_query_date
from commands.messages import (
    AddEntity,
    Command,
    CreateWorld,
    RemoveEntity,
    SetMemberRole,
    UpdateEntity,
)
from commands.provenance import Provenance
from commands.world import branch_id
from pearl.migrate import upgrade
from pearl.processes import free_port
from projections.runner import ProjectionRunner
from queries import consistency, cursors
from queries.cache import QueryCache
from queries.content import Filters, get_entity, list_entities, search
from queries.cursors import BadCursor
from queries.worlds import branch, branches_of, world_position, worlds_of
from tests.integration.readside import poll

CALENDAR = Calendar.from_dict(DEFAULT_CALENDAR)

# name -> (collection, fields); ids and references are filled in by `seed_world`, in this order.
SEED: list[tuple[str, str, dict[str, Any]]] = [
    (
        "aerth",
        "locations",
        {
            "name": "Aerth",
            "kind": "planet",
            "description": "A blue world",
            "metadata": {"climate": {"temp": "warm"}, "moons": 2},
        },
    ),
    (
        "westmarch",
        "locations",
        {
            "name": "Westmarch",
            "kind": "region",
            "parent_id": "aerth",
            "description": "The road to Moria starts here",
            "metadata": {"climate": {"temp": "cold", "wet": True}},
        },
    ),
    ("harbour", "locations", {"name": "Harbour", "kind": "city", "parent_id": "westmarch"}),
    ("luna", "locations", {"name": "Luna", "kind": "moon"}),
    ("inland", "locations", {"name": "Inland", "kind": "city", "parent_id": "westmarch"}),
    (
        "amber_coast",
        "locations",
        {"name": "Amber Coast", "kind": "coast", "parent_id": "aerth"},
    ),
    (
        "ilsa",
        "elements",
        {
            "kind": "character",
            "name": "Ilsa",
            "summary": "A wandering elf",
            "tags": ["hero", "elf"],
            "metadata": {"age": 300, "titles": ["Lady", "Warden"]},
        },
    ),
    (
        "guild",
        "elements",
        {
            "kind": "faction",
            "name": "Guild",
            "summary": "Amber traders",
            "tags": ["trade"],
            "metadata": {"age": 40},
        },
    ),
    ("lantern", "elements", {"kind": "artifact", "name": "Lantern", "tags": ["hero"]}),
    ("moria", "elements", {"kind": "place-spirit", "name": "Moria", "summary": "Old and deep"}),
    ("ghost", "elements", {"kind": "character", "name": "Ghost"}),
    ("first_age", "timelines", {"name": "First Age"}),
    ("amber_age", "timelines", {"name": "Amber Age", "description": "Later times"}),
    (
        "founding",
        "timeline_events",
        {"timeline_id": "first_age", "title": "Founding", "start": {"year": -130}},
    ),
    (
        "council",
        "timeline_events",
        {
            "timeline_id": "first_age",
            "title": "Council",
            "start": {"year": 412, "month": 11, "day": 2},
            "end": {"year": 413},
            "location_id": "harbour",
            "element_ids": ["ilsa", "guild"],
        },
    ),
    (
        "harvest",
        "timeline_events",
        {
            "timeline_id": "first_age",
            "title": "Harvest",
            "start": {"year": 412, "month": 3},
            "element_ids": ["guild"],
            "metadata": {"season": "spring"},
        },
    ),
    (
        "long_war",
        "timeline_events",
        {
            "timeline_id": "first_age",
            "title": "Long war",
            "start": {"year": 1, "month": 1, "day": 1},
            "end": {"year": 5, "month": 6, "day": 7},
            "location_id": "westmarch",
            "element_ids": ["ilsa"],
        },
    ),
    (
        "landing",
        "timeline_events",
        {
            "timeline_id": "first_age",
            "title": "Landing",
            "start": {"year": 412, "month": 11, "day": 2},
            "location_id": "harbour",
        },
    ),
    (
        "amber_fall",
        "timeline_events",
        {
            "timeline_id": "amber_age",
            "title": "Amber fall",
            "start": {"year": 600},
            "element_ids": ["lantern"],
        },
    ),
]
REFERENCES = ("parent_id", "timeline_id", "location_id")


@dataclass
class Seeded:
    engine: Engine
    history: WorldHistory
    world_id: UUID
    owner: str
    ids: dict[str, str]
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    @property
    def branch_id(self) -> UUID:
        return branch_id(self.world_id, "main")

    def names(self, items: list[dict[str, Any]]) -> list[str]:
        """The seed names of query results (by id)."""
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[item["id"]] for item in items]

    def handle(self, label: str, command: Command) -> Outcome:
        outcome = self.history.handle(command, Provenance(actor=self.owner))
        self.outcomes[label] = outcome
        return outcome

    def project(self) -> None:
        ProjectionRunner(self.engine, self.history).catch_up()


def seed_world(engine: Engine, history: WorldHistory) -> Seeded:
    seeded = Seeded(engine, history, uuid4(), str(uuid4()), {})
    seeded.ids = {name: str(uuid4()) for name, _, _ in SEED}
    w, ids = seeded.world_id, seeded.ids
    seeded.handle("create", CreateWorld(w, owner_id=seeded.owner, name="Aerth"))
    for name, collection, fields in SEED:
        resolved = dict(fields)
        for ref in REFERENCES:
            if ref in resolved:
                resolved[ref] = ids[resolved[ref]]
        if "element_ids" in resolved:
            resolved["element_ids"] = [ids[e] for e in resolved["element_ids"]]
        seeded.handle(f"add {name}", AddEntity(w, "main", collection, ids[name], resolved))
    seeded.handle(
        "rename luna", UpdateEntity(w, "main", "locations", ids["luna"], {"name": "Selene"})
    )
    seeded.handle("remove ghost", RemoveEntity(w, "main", "elements", ids["ghost"]))
    seeded.project()
    return seeded


@pytest.fixture(scope="module")
def engine(database_factory: Callable[[str], str]) -> Iterator[Engine]:
    """An engine on a migrated database of this module's own."""
    url = database_factory("pearl_queries")
    upgrade(url)
    created = create_engine(url)
    yield created
    created.dispose()


@pytest.fixture(scope="module")
def history(engine: Engine) -> Iterator[WorldHistory]:
    """The write-side application on the module's database."""
    app = WorldHistory.on_database(engine.url.render_as_string(hide_password=False))
    yield app
    app.close()


@pytest.fixture(scope="module")
def seeded(engine: Engine, history: WorldHistory) -> Seeded:
    """The seed world, recorded and projected."""
    return seed_world(engine, history)


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A connection to the module's database."""
    with engine.connect() as connection:
        yield connection


def listed(
    seeded: Seeded,
    conn: Connection,
    collection: str,
    filters: Filters | None = None,
    as_of: int | None = None,
) -> list[str]:
    """Seed names of one unpaginated list."""
    items, next_cursor = list_entities(
        conn,
        seeded.branch_id,
        collection,
        filters or Filters(),
        limit=1000,
        cursor=None,
        as_of=as_of,
    )
    assert next_cursor is None
    return seeded.names(items)


def in_world(start: str | None = None, end: str | None = None, **more: Any) -> Filters:
    """Filters for `from`/`to` as the API computes them from query-string dates."""
    bounds: dict[str, Any] = {}
    if start is not None:
        bounds["from_ordinal"] = CALENDAR.ordinal(parse_query_date(start))
    if end is not None:
        bounds["to_ordinal"] = CALENDAR.ordinal(parse_query_date(end), end_of_period=True)
    return Filters(**bounds, **more)


def walk(fetch: Callable[[str | None], tuple[list[dict[str, Any]], str | None]]) -> list[Any]:
    """Every item of a paginated list, following next_cursor to the end."""
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(1000):
        page, cursor = fetch(cursor)
        items.extend(page)
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


class TestFilters:
    def test_without_filters_a_list_is_in_creation_order(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        assert listed(seeded, conn, "locations") == [
            "aerth",
            "westmarch",
            "harbour",
            "luna",
            "inland",
            "amber_coast",
        ]
        assert listed(seeded, conn, "elements") == ["ilsa", "guild", "lantern", "moria"]
        assert listed(seeded, conn, "timelines") == ["first_age", "amber_age"]

    def test_kind(self, seeded: Seeded, conn: Connection) -> None:
        assert listed(seeded, conn, "locations", Filters(kind="city")) == ["harbour", "inland"]
        assert listed(seeded, conn, "elements", Filters(kind="character")) == ["ilsa"]
        assert listed(seeded, conn, "elements", Filters(kind="dragon")) == []

    def test_tag(self, seeded: Seeded, conn: Connection) -> None:
        assert listed(seeded, conn, "elements", Filters(tag="hero")) == ["ilsa", "lantern"]
        assert listed(seeded, conn, "elements", Filters(tag="elf")) == ["ilsa"]
        assert listed(seeded, conn, "elements", Filters(tag="her")) == []

    def test_parent_id_selects_direct_children_only(self, seeded: Seeded, conn: Connection) -> None:
        aerth = UUID(seeded.ids["aerth"])
        westmarch = UUID(seeded.ids["westmarch"])
        assert listed(seeded, conn, "locations", Filters(parent_id=aerth)) == [
            "westmarch",
            "amber_coast",
        ]
        assert listed(seeded, conn, "locations", Filters(parent_id=westmarch)) == [
            "harbour",
            "inland",
        ]

    def test_roots_only_selects_locations_without_a_parent(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        assert listed(seeded, conn, "locations", Filters(roots_only=True)) == ["aerth", "luna"]

    def test_timeline_id_lists_its_events_in_in_world_order(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        first_age = UUID(seeded.ids["first_age"])
        names = listed(seeded, conn, "timeline_events", Filters(timeline_id=first_age))
        # Council and Landing start the same day: creation order breaks the tie.
        assert names == ["founding", "long_war", "harvest", "council", "landing"]
        amber_age = UUID(seeded.ids["amber_age"])
        assert listed(seeded, conn, "timeline_events", Filters(timeline_id=amber_age)) == [
            "amber_fall"
        ]

    def test_every_timeline_event_list_is_sorted_by_calendar_ordinal(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        items, _ = list_entities(
            conn,
            seeded.branch_id,
            "timeline_events",
            Filters(),
            limit=100,
            cursor=None,
            as_of=None,
        )
        ordinals = [CALENDAR.ordinal(item["start"]) for item in items]
        assert ordinals == sorted(ordinals)
        assert len(items) == 6

    def test_element_id_selects_the_events_linking_it(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        ilsa, guild = UUID(seeded.ids["ilsa"]), UUID(seeded.ids["guild"])
        assert listed(seeded, conn, "timeline_events", Filters(element_id=ilsa)) == [
            "long_war",
            "council",
        ]
        assert listed(seeded, conn, "timeline_events", Filters(element_id=guild)) == [
            "harvest",
            "council",
        ]

    def test_location_id_selects_the_events_there(self, seeded: Seeded, conn: Connection) -> None:
        harbour = UUID(seeded.ids["harbour"])
        assert listed(seeded, conn, "timeline_events", Filters(location_id=harbour)) == [
            "council",
            "landing",
        ]

    def test_metadata_matches_by_containment(self, seeded: Seeded, conn: Connection) -> None:
        def locations(metadata: dict[str, Any]) -> list[str]:
            return listed(seeded, conn, "locations", Filters(metadata=metadata))

        def elements(metadata: dict[str, Any]) -> list[str]:
            return listed(seeded, conn, "elements", Filters(metadata=metadata))

        assert locations({"climate": {"temp": "cold"}}) == ["westmarch"]
        assert locations({"climate": {}}) == ["aerth", "westmarch"]
        assert locations({"moons": 2}) == ["aerth"]
        assert locations({"moons": 3}) == []
        assert locations({}) == listed(seeded, conn, "locations")
        assert elements({"titles": ["Warden"]}) == ["ilsa"]
        assert elements({"age": 40}) == ["guild"]
        assert listed(seeded, conn, "timeline_events", Filters(metadata={"season": "spring"})) == [
            "harvest"
        ]

    def test_q_searches_the_text_of_the_collection(self, seeded: Seeded, conn: Connection) -> None:
        assert listed(seeded, conn, "elements", Filters(q="elf")) == ["ilsa"]
        assert listed(seeded, conn, "locations", Filters(q="moria")) == ["westmarch"]
        assert listed(seeded, conn, "timelines", Filters(q="later")) == ["amber_age"]
        assert listed(seeded, conn, "elements", Filters(q="nothing matches this")) == []

    def test_filters_combine(self, seeded: Seeded, conn: Connection) -> None:
        first_age, harbour = UUID(seeded.ids["first_age"]), UUID(seeded.ids["harbour"])
        assert listed(
            seeded,
            conn,
            "timeline_events",
            in_world("413", None, timeline_id=first_age, location_id=harbour),
        ) == ["council"]
        assert listed(seeded, conn, "elements", Filters(kind="artifact", tag="hero")) == ["lantern"]

    def test_filters_that_do_not_apply_to_a_collection_are_ignored(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        assert listed(seeded, conn, "timelines", Filters(kind="city", tag="hero")) == [
            "first_age",
            "amber_age",
        ]


class TestInWorldRanges:
    @pytest.mark.parametrize(
        ("start", "end", "expected"),
        [
            # A partial date covers its whole period, on both sides of the comparison.
            ("-130-06-15", "-130-06-15", ["founding"]),
            ("-131", "-131", []),
            (None, "-130", ["founding"]),
            ("412-03-31", "412-03-31", ["harvest"]),
            ("412-04", "412-10", []),
            ("412", "412", ["harvest", "council", "landing"]),
            ("412-11-02", "412-11-02", ["council", "landing"]),
            ("412-11-03", None, ["council", "amber_fall"]),
            # An event spanning [start, end] overlaps a range that touches any day of it.
            ("413-12-31", "413-12-31", ["council"]),
            ("414", "599", []),
            ("3", "3", ["long_war"]),
            ("5-06-07", "5-06-07", ["long_war"]),
            ("5-06-08", "411", []),
            ("-1", "1-01-01", ["long_war"]),
            (None, None, ["founding", "long_war", "harvest", "council", "landing", "amber_fall"]),
        ],
    )
    def test_from_and_to_select_overlapping_spans_in_in_world_order(
        self,
        seeded: Seeded,
        conn: Connection,
        start: str | None,
        end: str | None,
        expected: list[str],
    ) -> None:
        assert listed(seeded, conn, "timeline_events", in_world(start, end)) == expected

    def test_range_bounds_are_ignored_by_collections_without_dates(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        assert listed(seeded, conn, "elements", in_world("5000", "5001")) == listed(
            seeded, conn, "elements"
        )


class TestKeysetPagination:
    CASES: list[tuple[str, Filters]] = [
        ("locations", Filters()),
        ("locations", Filters(kind="city")),
        ("elements", Filters()),
        ("timelines", Filters()),
        ("timeline_events", Filters()),
        ("timeline_events", in_world("412", "413")),
    ]

    @pytest.mark.parametrize("limit", [1, 2, 3, 5])
    @pytest.mark.parametrize(("collection", "filters"), CASES)
    def test_walking_every_page_returns_each_item_once_in_list_order(
        self, seeded: Seeded, conn: Connection, collection: str, filters: Filters, limit: int
    ) -> None:
        everything = listed(seeded, conn, collection, filters)

        def fetch(cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
            page, next_cursor = list_entities(
                conn, seeded.branch_id, collection, filters, limit=limit, cursor=cursor, as_of=None
            )
            assert len(page) <= limit
            if next_cursor is not None:
                assert len(page) == limit
            return page, next_cursor

        walked = seeded.names(walk(fetch))
        assert walked == everything
        assert len(set(walked)) == len(walked)

    def test_the_last_page_has_no_next_cursor_and_a_full_page_does(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        first, cursor = list_entities(
            conn, seeded.branch_id, "elements", Filters(), limit=3, cursor=None, as_of=None
        )
        assert len(first) == 3 and cursor is not None
        last, end = list_entities(
            conn, seeded.branch_id, "elements", Filters(), limit=3, cursor=cursor, as_of=None
        )
        assert len(last) == 1 and end is None
        exact, none = list_entities(
            conn, seeded.branch_id, "elements", Filters(), limit=4, cursor=None, as_of=None
        )
        assert len(exact) == 4 and none is None

    @pytest.mark.parametrize("limit", [1, 2])
    def test_pages_walked_as_of_an_old_version_are_complete(
        self, seeded: Seeded, conn: Connection, limit: int
    ) -> None:
        before_removal = seeded.outcomes["remove ghost"].version - 1

        def fetch(cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
            return list_entities(
                conn,
                seeded.branch_id,
                "elements",
                Filters(),
                limit=limit,
                cursor=cursor,
                as_of=before_removal,
            )

        assert seeded.names(walk(fetch)) == ["ilsa", "guild", "lantern", "moria", "ghost"]

    def test_a_page_walk_is_stable_while_the_list_changes(
        self, engine: Engine, history: WorldHistory, conn: Connection
    ) -> None:
        other = seed_world(engine, history)

        def fetch(cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
            return list_entities(
                conn, other.branch_id, "elements", Filters(), limit=2, cursor=cursor, as_of=None
            )

        first, cursor = fetch(None)
        assert other.names(first) == ["ilsa", "guild"]
        # Remove an item already seen and add a new one: nothing is skipped or repeated.
        other.handle(
            "remove ilsa",
            RemoveEntity(other.world_id, "main", "elements", other.ids["ilsa"], cascade=True),
        )
        other.ids["late"] = str(uuid4())
        other.handle(
            "add late",
            AddEntity(
                other.world_id, "main", "elements", other.ids["late"], {"kind": "x", "name": "Late"}
            ),
        )
        other.project()
        rest = walk(lambda c: fetch(c or cursor))
        assert other.names(first + rest) == ["ilsa", "guild", "lantern", "moria", "late"]


class TestBadCursors:
    def page(self, seeded: Seeded, conn: Connection, collection: str, cursor: str) -> Any:
        return list_entities(
            conn, seeded.branch_id, collection, Filters(), limit=2, cursor=cursor, as_of=None
        )

    @pytest.mark.parametrize(
        "cursor",
        [
            "not a cursor",
            "!!!",
            cursors.encode("locations", [1]),  # another list's cursor
            cursors.encode("elements", [1, 2]),  # the wrong shape
            cursors.encode("elements", [True]),
            cursors.encode("elements", [None]),
        ],
    )
    def test_a_cursor_this_list_did_not_hand_out_is_refused(
        self, seeded: Seeded, conn: Connection, cursor: str
    ) -> None:
        with pytest.raises(BadCursor):
            self.page(seeded, conn, "elements", cursor)

    @pytest.mark.parametrize(
        ("collection", "key"),
        [("elements", ["abc"]), ("timeline_events", ["abc", 1]), ("timeline_events", [1, "x"])],
    )
    def test_a_forged_cursor_of_the_right_shape_is_refused(
        self, seeded: Seeded, conn: Connection, collection: str, key: list[Any]
    ) -> None:
        # Cursors are opaque but not signed: a client can forge one, and must get a 422
        # (BadCursor), not a database error (500).
        with pytest.raises(BadCursor):
            self.page(seeded, conn, collection, cursors.encode(collection, key))

    def test_a_timeline_cursor_is_refused_by_the_element_list(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        _, cursor = list_entities(
            conn, seeded.branch_id, "timeline_events", Filters(), limit=1, cursor=None, as_of=None
        )
        assert cursor is not None
        with pytest.raises(BadCursor):
            self.page(seeded, conn, "elements", cursor)

    def test_search_refuses_a_bad_cursor(self, seeded: Seeded, conn: Connection) -> None:
        for cursor in ("garbage", cursors.encode("search", ["not-a-number", 1, "elements"])):
            with pytest.raises(BadCursor):
                search(conn, seeded.branch_id, "amber", limit=1, cursor=cursor, as_of=None)

    def test_search_refuses_a_forged_cursor_of_the_right_shape(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        forged = cursors.encode("search", ["0.5", "not-a-number", "elements"])
        with pytest.raises(BadCursor):
            search(conn, seeded.branch_id, "amber", limit=1, cursor=forged, as_of=None)

    def test_the_world_list_refuses_a_bad_cursor(self, seeded: Seeded, conn: Connection) -> None:
        with pytest.raises(BadCursor):
            worlds_of(conn, UUID(seeded.owner), limit=1, cursor="garbage")
        with pytest.raises(BadCursor):
            worlds_of(conn, UUID(seeded.owner), limit=1, cursor=cursors.encode("worlds", ["x"]))

    def test_the_world_list_refuses_a_cursor_of_the_right_shape_but_wrong_values(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        forged = cursors.encode("worlds", ["not a time", "not a uuid"])
        with pytest.raises(BadCursor):
            worlds_of(conn, UUID(seeded.owner), limit=1, cursor=forged)


class TestAsOfVersion:
    def test_an_entity_before_its_creation_is_not_there(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        created = seeded.outcomes["add lantern"].version
        lantern = UUID(seeded.ids["lantern"])
        assert get_entity(conn, seeded.branch_id, "elements", lantern, created - 1) is None
        found = get_entity(conn, seeded.branch_id, "elements", lantern, created)
        assert found is not None
        assert found["version"] == created

    def test_an_old_version_answers_the_old_fields(self, seeded: Seeded, conn: Connection) -> None:
        renamed = seeded.outcomes["rename luna"].version
        added = seeded.outcomes["add luna"].version
        luna = UUID(seeded.ids["luna"])
        before = get_entity(conn, seeded.branch_id, "locations", luna, renamed - 1)
        after = get_entity(conn, seeded.branch_id, "locations", luna, renamed)
        current = get_entity(conn, seeded.branch_id, "locations", luna, None)
        assert before is not None and after is not None
        assert (before["name"], before["version"]) == ("Luna", added)
        assert (after["name"], after["version"]) == ("Selene", renamed)
        assert current == after

    def test_a_removed_entity_still_answers_as_of_a_version_before_its_removal(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        removed = seeded.outcomes["remove ghost"].version
        ghost = UUID(seeded.ids["ghost"])
        assert get_entity(conn, seeded.branch_id, "elements", ghost, None) is None
        assert get_entity(conn, seeded.branch_id, "elements", ghost, removed) is None
        old = get_entity(conn, seeded.branch_id, "elements", ghost, removed - 1)
        assert old is not None
        assert old["name"] == "Ghost"

    def test_lists_answer_as_the_branch_stood(self, seeded: Seeded, conn: Connection) -> None:
        after_first_location = seeded.outcomes["add aerth"].version
        assert listed(seeded, conn, "locations", as_of=after_first_location) == ["aerth"]
        assert listed(seeded, conn, "locations", as_of=after_first_location - 1) == []
        renamed = seeded.outcomes["rename luna"].version
        names = {
            item["name"]
            for item in list_entities(
                conn,
                seeded.branch_id,
                "locations",
                Filters(),
                limit=100,
                cursor=None,
                as_of=renamed - 1,
            )[0]
        }
        assert "Luna" in names and "Selene" not in names

    def test_search_answers_as_the_branch_stood(self, seeded: Seeded, conn: Connection) -> None:
        renamed = seeded.outcomes["rename luna"].version

        def hits(text: str, as_of: int | None) -> list[str]:
            items, _ = search(conn, seeded.branch_id, text, limit=10, cursor=None, as_of=as_of)
            return [item["id"] for item in items]

        luna = seeded.ids["luna"]
        assert hits("luna", renamed - 1) == [luna]
        assert hits("luna", None) == []
        assert hits("selene", None) == [luna]
        assert hits("selene", renamed - 1) == []


class TestSearch:
    def test_it_finds_items_in_all_four_collections(self, seeded: Seeded, conn: Connection) -> None:
        items, _ = search(conn, seeded.branch_id, "amber", limit=50, cursor=None, as_of=None)
        found = {(item["collection"], item["id"]) for item in items}
        assert found == {
            ("locations", seeded.ids["amber_coast"]),
            ("elements", seeded.ids["guild"]),  # in its summary
            ("timelines", seeded.ids["amber_age"]),
            ("timeline-events", seeded.ids["amber_fall"]),
        }

    def test_items_carry_collection_id_title_version_and_rank(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        items, _ = search(conn, seeded.branch_id, "council", limit=50, cursor=None, as_of=None)
        assert items == [
            {
                "collection": "timeline-events",
                "id": seeded.ids["council"],
                "title": "Council",
                "version": seeded.outcomes["add council"].version,
                "rank": items[0]["rank"],
            }
        ]
        assert items[0]["rank"] > 0

    def test_results_are_ranked_best_first(self, seeded: Seeded, conn: Connection) -> None:
        items, _ = search(conn, seeded.branch_id, "amber", limit=50, cursor=None, as_of=None)
        ranks = [item["rank"] for item in items]
        assert ranks == sorted(ranks, reverse=True)

    def test_a_name_match_ranks_above_a_mention_in_a_description(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        # Westmarch's description mentions Moria once; the element is *named* Moria.
        items, _ = search(conn, seeded.branch_id, "moria", limit=50, cursor=None, as_of=None)
        assert seeded.names(items) == ["moria", "westmarch"]

    @pytest.mark.parametrize("limit", [1, 2, 3])
    def test_walking_search_pages_returns_each_hit_once_in_rank_order(
        self, seeded: Seeded, conn: Connection, limit: int
    ) -> None:
        everything, _ = search(conn, seeded.branch_id, "amber", limit=50, cursor=None, as_of=None)
        walked = walk(
            lambda cursor: search(
                conn, seeded.branch_id, "amber", limit=limit, cursor=cursor, as_of=None
            )
        )
        assert walked == everything
        assert len(walked) == 4

    def test_removed_entities_are_not_found(self, seeded: Seeded, conn: Connection) -> None:
        items, _ = search(conn, seeded.branch_id, "ghost", limit=10, cursor=None, as_of=None)
        assert items == []


class TestWorldQueries:
    def test_a_user_sees_the_worlds_they_have_a_role_in_with_that_role(
        self, engine: Engine, history: WorldHistory, conn: Connection
    ) -> None:
        user, owner = str(uuid4()), str(uuid4())
        actor = Provenance(actor=owner)
        world_ids = [uuid4() for _ in range(5)]
        for n, world_id in enumerate(world_ids):
            history.handle(CreateWorld(world_id, owner_id=owner, name=f"W{n}"), actor)
            if n != 2:
                history.handle(
                    SetMemberRole(world_id, user, "viewer" if n % 2 else "editor"), actor
                )
        ProjectionRunner(engine, history).catch_up()

        def fetch(limit: int) -> list[dict[str, Any]]:
            return walk(lambda cursor: worlds_of(conn, UUID(user), limit=limit, cursor=cursor))

        for limit in (1, 2, 10):
            worlds = fetch(limit)
            assert [w["id"] for w in worlds] == [str(w) for n, w in enumerate(world_ids) if n != 2]
            assert [w["role"] for w in worlds] == ["editor", "viewer", "viewer", "editor"]
        assert [w["role"] for w in worlds_of(conn, UUID(owner), limit=10, cursor=None)[0]] == [
            "owner"
        ] * 5

    def test_world_position_is_that_of_the_worlds_last_event(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        assert world_position(conn, seeded.world_id) == seeded.outcomes["remove ghost"].position
        assert world_position(conn, uuid4()) is None

    def test_branches_of_a_world_and_one_branch_by_name(
        self, seeded: Seeded, conn: Connection
    ) -> None:
        head = seeded.outcomes["remove ghost"].version
        main = branch(conn, seeded.world_id, "main")
        assert main is not None
        assert (main["name"], main["head_version"], main["forked_from"]) == ("main", head, None)
        assert main["branch_id"] == str(seeded.branch_id)
        assert branches_of(conn, seeded.world_id) == [main]
        assert branch(conn, seeded.world_id, "no-such-branch") is None


class TestReadYourWrites:
    def test_wait_for_returns_true_once_the_projection_passes_the_position(
        self, engine: Engine, history: WorldHistory
    ) -> None:
        runner = ProjectionRunner(engine, history)
        runner.catch_up()
        owner = str(uuid4())
        outcome = history.handle(
            CreateWorld(uuid4(), owner_id=owner, name="Later"), Provenance(actor=owner)
        )
        assert outcome.position is not None
        assert consistency.wait_for(engine, outcome.position, timeout=0.05) is False
        projector = threading.Thread(target=runner.catch_up)
        started = time.monotonic()
        projector.start()
        try:
            assert consistency.wait_for(engine, outcome.position, timeout=10) is True
        finally:
            projector.join(timeout=10)
        assert time.monotonic() - started < 5
        assert consistency.projected_position(engine) >= outcome.position

    def test_wait_for_gives_up_after_the_timeout(self, engine: Engine) -> None:
        position = consistency.projected_position(engine)
        started = time.monotonic()
        assert consistency.wait_for(engine, position + 1000, timeout=0.3) is False
        waited = time.monotonic() - started
        assert 0.3 <= waited < 2

    def test_a_position_already_passed_returns_at_once(self, engine: Engine) -> None:
        started = time.monotonic()
        assert consistency.wait_for(engine, 0, timeout=5) is True
        assert time.monotonic() - started < 1


class TestQueryCache:
    @pytest.fixture
    def calls(self) -> list[int]:
        """A record of compute() calls."""
        return []

    def counted(self, calls: list[int], value: Any) -> Callable[[], Any]:
        def compute() -> Any:
            calls.append(1)
            return value

        return compute

    def test_a_second_fetch_with_the_same_key_does_not_compute_again(
        self, redis_url: str, calls: list[int]
    ) -> None:
        cache = QueryCache(redis_url)
        key = cache.key(str(uuid4()), 7, "/elements?kind=x")
        value = {"items": [{"id": "1", "n": 1.5}], "next_cursor": None}
        assert cache.fetch(key, self.counted(calls, value)) == value
        assert cache.fetch(key, self.counted(calls, {"other": True})) == value
        assert len(calls) == 1

    def test_the_answer_is_stored_in_redis_with_the_cache_ttl(self, redis_url: str) -> None:
        cache = QueryCache(redis_url, ttl=120)
        key = cache.key(str(uuid4()), 1, "/q")
        cache.fetch(key, lambda: [1, 2, 3])
        client = redis.Redis.from_url(redis_url)
        try:
            assert client.get(key) == b"[1, 2, 3]"
            assert 0 < int(client.ttl(key)) <= 120
        finally:
            client.close()

    def test_a_new_position_means_a_new_key_and_a_fresh_answer(
        self, redis_url: str, calls: list[int]
    ) -> None:
        cache = QueryCache(redis_url)
        world = str(uuid4())
        before, after = cache.key(world, 10, "/q"), cache.key(world, 11, "/q")
        assert before != after
        assert cache.key(world, 10, "/q") == before
        assert cache.key(world, 10, "/other") != before
        assert cache.key(str(uuid4()), 10, "/q") != before
        assert cache.fetch(before, self.counted(calls, "old")) == "old"
        assert cache.fetch(after, self.counted(calls, "new")) == "new"
        assert len(calls) == 2

    def test_with_redis_down_answers_are_computed_and_redis_is_left_alone_for_a_while(
        self, calls: list[int], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        attempts: list[float] = []
        real_get = redis.Redis.get

        def counting_get(client: redis.Redis, name: str) -> Any:
            attempts.append(time.monotonic())
            return real_get(client, name)

        monkeypatch.setattr(redis.Redis, "get", counting_get)
        cache = QueryCache(f"redis://127.0.0.1:{free_port()}/0", retry_after=0.3)
        assert cache.fetch("k", self.counted(calls, {"a": 1})) == {"a": 1}
        assert len(attempts) == 1
        for _ in range(5):
            assert cache.fetch("k", self.counted(calls, {"a": 1})) == {"a": 1}
        assert len(attempts) == 1
        assert len(calls) == 6
        assert poll(lambda: cache.fetch("k", lambda: 0) == 0 and len(attempts) == 2, timeout=5)
        assert attempts[1] - attempts[0] >= 0.3

    def test_without_a_url_every_fetch_computes(self, calls: list[int]) -> None:
        cache = QueryCache(None)
        cache.fetch("k", self.counted(calls, 1))
        cache.fetch("k", self.counted(calls, 1))
        assert len(calls) == 2
