"""Metadata containment and full-text reads are served by GIN indexes keyed by branch
first (migration 0005): a bitmap scan finds this branch's matching rows only, however many
rows of other branches (other worlds) match the same condition."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from pearl.migrate import upgrade

ROWS = 3000
FACTIONS = 30  # a selective condition, so the planner has every reason to use the index
BRANCH, OTHER_BRANCH = uuid4(), uuid4()


@pytest.fixture(scope="module")
def engine(database_factory: Callable[[str], str]) -> Iterator[Engine]:
    url = database_factory("pearl_branch_indexes")
    upgrade(url)
    created = create_engine(url)
    insert = text(
        "INSERT INTO rm_elements (world_id, branch_id, id, valid_from, created_seq, kind, name,"
        " metadata) VALUES (:world, :branch, :id, :seq, :seq, 'character', :name,"
        " CAST(:metadata AS jsonb))"
    )
    with created.begin() as conn:
        for branch in (BRANCH, OTHER_BRANCH):  # the other branch matches just as often
            world = uuid4()
            conn.execute(
                insert,
                [
                    {
                        "world": world,
                        "branch": branch,
                        "id": uuid4(),
                        "seq": i + 1,
                        "name": f"{'amber' if i % FACTIONS == 1 else 'basalt'} {i}",
                        "metadata": json.dumps({"faction": f"f{i % FACTIONS}", "n": i}),
                    }
                    for i in range(ROWS)
                ],
            )
        conn.execute(text("ANALYZE rm_elements"))
    yield created
    created.dispose()


def bitmap_plan(conn: Connection, where: str, params: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The plan of a read of BRANCH's current rows `where`, with the GIN indexes the only
    ones to choose from (the others are dropped in this transaction, which is rolled back),
    and how many rows it answers."""
    others = conn.execute(
        text(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'rm_elements'"
            " AND indexname NOT LIKE 'rm_elements_branch_%' AND indexname <> 'rm_elements_pkey'"
        )
    ).scalars()
    for name in list(others):
        conn.execute(text(f"DROP INDEX {name}"))
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    sql = f"SELECT id FROM rm_elements WHERE branch_id = :branch AND valid_to IS NULL AND {where}"
    found = conn.execute(text(sql), {"branch": BRANCH, **params}).all()
    plan = conn.execute(
        text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"), {"branch": BRANCH, **params}
    ).scalar_one()
    return plan[0]["Plan"], len(found)


def index_scans(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node] if node["Node Type"] == "Bitmap Index Scan" else []
    for child in node.get("Plans", []):
        found += index_scans(child)
    return found


@pytest.mark.parametrize(
    ("where", "params", "index"),
    [
        (
            "metadata @> CAST(:m AS jsonb)",
            {"m": '{"faction": "f1"}'},
            "rm_elements_branch_metadata_idx",
        ),
        (
            "search @@ plainto_tsquery('simple', :q)",
            {"q": "amber"},
            "rm_elements_branch_search_idx",
        ),
    ],
)
def test_the_index_finds_this_branchs_matches_only(
    engine: Engine, where: str, params: dict[str, Any], index: str
) -> None:
    with engine.connect() as conn:
        plan, answered = bitmap_plan(conn, where, params)
        conn.rollback()
    [scan] = index_scans(plan)
    assert scan["Index Name"] == index
    assert answered == ROWS // FACTIONS
    assert scan["Actual Rows"] == answered  # not the other branch's matches as well


def test_the_old_single_column_indexes_are_gone(engine: Engine) -> None:
    with engine.connect() as conn:
        names = set(
            conn.execute(
                text("SELECT indexname FROM pg_indexes WHERE tablename LIKE 'rm_%'")
            ).scalars()
        )
    assert {"rm_elements_branch_metadata_idx", "rm_timeline_events_branch_search_idx"} <= names
    assert not names & {"rm_elements_metadata_idx", "rm_elements_search_idx"}


def test_a_read_through_queries_content_answers_the_same(engine: Engine) -> None:
    from queries.content import Filters, list_entities, search

    with engine.connect() as conn:
        page, _ = list_entities(
            conn, BRANCH, "elements", Filters(metadata={"faction": "f1"}),
            limit=5, cursor=None, as_of=None,
        )  # fmt: skip
        hits, _ = search(conn, BRANCH, "amber", limit=5, cursor=None, as_of=None)
    assert [item["metadata"]["n"] for item in page] == [1, 31, 61, 91, 121]
    assert len(hits) == 5 and all(hit["title"].startswith("amber") for hit in hits)
    assert all(UUID(hit["id"]) for hit in hits)
