"""In-world range reads of timeline events: the plans PostgreSQL picks, and their answers.

A branch of a few thousand versioned rows is written straight into `rm_timeline_events`
(events one after another, a few long ones, reschedules that leave old row versions), so
the planner has a real choice. Each range read must come from an index bounded on both
sides of `start_ordinal` (the lower bound via the longest span, one probe of
`rm_timeline_events_span_idx`), current or as of a version, and answer exactly what a
brute-force filter of the same rows answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Connection, Engine, create_engine, event, text

from pearl.migrate import upgrade
from queries.content import Filters, list_entities

EVENTS = 4000
RESCHEDULED = 400  # events moved later in the world at versions after EVENTS
LONG = {1000: 3500, 1500: 2000}  # event index -> its span (most events last 0-2 days)
BRANCH, OTHER_BRANCH = uuid4(), uuid4()
TIMELINES = (uuid4(), uuid4())
Row = dict[str, Any]


def generated_rows() -> list[Row]:
    """Every row version of the branch: event i is created at version i + 1 on timeline
    i % 2; the first RESCHEDULED events are moved 10,000 days later at version EVENTS + i."""
    rows: list[Row] = []
    for i in range(EVENTS):
        span = LONG.get(i, i % 3)
        row: Row = {
            "id": uuid4(),
            "valid_from": i + 1,
            "valid_to": None,
            "created_seq": i + 1,
            "timeline_id": TIMELINES[i % 2],
            "start_ordinal": i,
            "end_ordinal": i + span,
        }
        if i < RESCHEDULED:
            moved: Row = {**row, "valid_from": EVENTS + i, "start_ordinal": i + 10_000}
            moved["end_ordinal"] = moved["start_ordinal"] + span
            row["valid_to"] = EVENTS + i
            rows.append(moved)
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def engine(database_factory: Callable[[str], str]) -> Iterator[Engine]:
    url = database_factory("pearl_read_indexes")
    upgrade(url)
    created = create_engine(url)
    yield created
    created.dispose()


@pytest.fixture(scope="module")
def rows(engine: Engine) -> list[Row]:
    generated = generated_rows()
    insert = text(
        "INSERT INTO rm_timeline_events (world_id, branch_id, id, valid_from, valid_to,"
        ' created_seq, timeline_id, title, start, "end", start_ordinal, end_ordinal)'
        " VALUES (:world, :branch, :id, :valid_from, :valid_to, :created_seq, :timeline_id,"
        " 'An event', CAST(:start AS jsonb), NULL, :start_ordinal, :end_ordinal)"
    )
    world = uuid4()
    with engine.begin() as conn:
        for branch in (BRANCH, OTHER_BRANCH):  # another branch: rows a read must skip
            conn.execute(
                insert,
                [
                    {
                        **row,
                        "id": row["id"] if branch == BRANCH else uuid4(),
                        "world": world,
                        "branch": branch,
                        "start": json.dumps({"year": row["start_ordinal"]}),
                    }
                    for row in generated
                ],
            )
        conn.execute(text("ANALYZE rm_timeline_events"))
    return generated


@pytest.fixture
def conn(engine: Engine, rows: list[Row]) -> Iterator[Connection]:
    with engine.connect() as connection:
        yield connection


def expected(
    rows: list[Row], start: int, end: int, timeline: UUID | None, as_of: int | None
) -> list[str]:
    """Ids of the events overlapping [start, end], by brute force, in in-world order."""
    found = [
        r
        for r in rows
        if (r["valid_to"] is None if as_of is None else r["valid_from"] <= as_of)
        and (as_of is None or r["valid_to"] is None or r["valid_to"] > as_of)
        and r["end_ordinal"] >= start
        and r["start_ordinal"] <= end
        and (timeline is None or r["timeline_id"] == timeline)
    ]
    return [
        str(r["id"]) for r in sorted(found, key=lambda r: (r["start_ordinal"], r["created_seq"]))
    ]


def read_all(
    conn: Connection, start: int, end: int, timeline: UUID | None, as_of: int | None
) -> list[str]:
    """Every page of the range read, following the cursor."""
    filters = Filters(timeline_id=timeline, from_ordinal=start, to_ordinal=end)
    ids: list[str] = []
    cursor = None
    for _ in range(200):
        items, cursor = list_entities(
            conn, BRANCH, "timeline_events", filters, limit=50, cursor=cursor, as_of=as_of
        )
        ids += [item["id"] for item in items]
        if cursor is None:
            return ids
    raise AssertionError("pagination did not end")


def plan_of(conn: Connection, read: Callable[[], object]) -> dict[str, Any]:
    """The JSON plan of the last statement `read()` runs."""
    statements: list[tuple[str, Any]] = []

    def capture(_c: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    event.listen(conn, "before_cursor_execute", capture)
    try:
        read()
    finally:
        event.remove(conn, "before_cursor_execute", capture)
    statement, params = statements[-1]
    explained = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, params).scalar()
    assert explained is not None
    plan: dict[str, Any] = explained[0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


@pytest.mark.parametrize("as_of", [None, 3500, EVENTS + 100])
@pytest.mark.parametrize("timeline", [None, TIMELINES[1]])
@pytest.mark.parametrize("start,end", [(1000, 1010), (3000, 3049), (2500, 2502), (-50, 450)])
def test_a_range_read_answers_what_brute_force_does(
    conn: Connection,
    rows: list[Row],
    start: int,
    end: int,
    timeline: UUID | None,
    as_of: int | None,
) -> None:
    want = expected(rows, start, end, timeline, as_of)
    assert want, "a range that selects nothing proves little"
    assert read_all(conn, start, end, timeline, as_of) == want


def test_long_events_that_began_long_before_the_range_are_found(
    conn: Connection, rows: list[Row]
) -> None:
    ids = read_all(conn, 3400, 3400, None, None)
    long_ones = {str(r["id"]) for r in rows if r["valid_to"] is None and r["start_ordinal"] < 3300}
    assert len(long_ones & set(ids)) == 2  # events 7 and 1500, both still running at 3400


@pytest.mark.parametrize("as_of", [None, 2000])
@pytest.mark.parametrize("timeline", [None, TIMELINES[0]])
def test_a_range_read_is_an_index_scan_bounded_below_by_the_longest_span(
    conn: Connection, as_of: int | None, timeline: UUID | None
) -> None:
    filters = Filters(timeline_id=timeline, from_ordinal=3000, to_ordinal=3010)
    plan = plan_of(
        conn,
        lambda: list_entities(
            conn, BRANCH, "timeline_events", filters, limit=50, cursor=None, as_of=as_of
        ),
    )
    every = list(nodes(plan))
    scans = [n for n in every if n.get("Relation Name") == "rm_timeline_events"]
    assert scans and not [n for n in scans if n["Node Type"] == "Seq Scan"], plan
    indexed = [n for n in every if n.get("Index Name", "").startswith("rm_timeline_events_")]
    assert "rm_timeline_events_span_idx" in [n["Index Name"] for n in indexed], plan
    bounded = [
        n
        for n in indexed
        if "start_ordinal >=" in n.get("Index Cond", "")
        and "start_ordinal <=" in n.get("Index Cond", "")
    ]
    assert bounded, json.dumps(indexed, indent=1)
