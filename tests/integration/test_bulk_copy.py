"""`projections.bulk_copy` stores exactly what SQLAlchemy's insert-many stores.

Awkward values (COPY's own escapes, array quoting, JSON `null`, SQL NULL, keywords as column
names) go in both ways into two copies of one table on the real PostgreSQL; the tables must
then read back identical.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    Table,
    Text,
    Uuid,
    create_engine,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from projections.bulk_copy import copy_lines, copy_rows


def _table(name: str, metadata: MetaData) -> Table:
    return Table(
        name,
        metadata,
        Column("row_id", BigInteger, primary_key=True, autoincrement=True),
        Column("id", Uuid),
        Column("n", BigInteger),
        Column("title", Text),
        Column("end", JSONB),  # a keyword as a column name
        Column("tags", ARRAY(Text)),
        Column("element_ids", ARRAY(Uuid)),
        Column("at", DateTime(timezone=True)),
        prefixes=["TEMPORARY"],
    )


AWKWARD: list[dict[str, Any]] = [
    {
        "id": uuid4(),
        "n": 1,
        "title": "tab\there\nnew line\r\\N back\\slash",
        "end": None,  # JSON null, as SQLAlchemy stores Python None in a JSONB column
        "tags": ['quo"te', "back\\slash", "", "NULL", "a,b{c}", "tab\tnl\n", "é ✓"],
        "element_ids": [uuid4(), uuid4()],
        "at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    },
    {
        "id": uuid4(),
        "n": -(2**62),
        "title": None,
        "end": {"year": 12, "note": 'tab\t\\ "q" \n', "list": [1, 2.5, None, True]},
        "tags": [],
        "element_ids": [],
        "at": None,
    },
    {
        "id": uuid4(),
        "n": None,
        "title": "",
        "end": "\\N",
        "tags": None,
        "element_ids": None,
        "at": datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
    },
]


def test_copy_rows_stores_what_insert_many_stores(database_url: str) -> None:
    engine = create_engine(database_url)
    metadata = MetaData()
    inserted, copied = _table("via_insert", metadata), _table("via_copy", metadata)
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.execute(inserted.insert(), AWKWARD)
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            copy_rows(cursor, copied, AWKWARD)
            copy_rows(cursor, copied, [])  # nothing to copy: no statement, no error
            columns = [c.name for c in inserted.c if c.name != "row_id"]
            by_insert = conn.execute(
                select(*[inserted.c[n] for n in columns]).order_by(inserted.c.row_id)
            ).all()
            by_copy = conn.execute(
                select(*[copied.c[n] for n in columns]).order_by(copied.c.row_id)
            ).all()
            json_null = conn.execute(
                select(copied.c["end"].is_(None)).order_by(copied.c.row_id)
            ).scalars()
            assert list(json_null) == [False, False, False]
    finally:
        engine.dispose()
    assert by_copy == by_insert
    assert len(by_copy) == len(AWKWARD)
    assert by_copy[0].title == AWKWARD[0]["title"]
    assert by_copy[0].tags == AWKWARD[0]["tags"]
    assert by_copy[0].element_ids == AWKWARD[0]["element_ids"]
    assert isinstance(by_copy[0].element_ids[0], UUID)
    assert by_copy[1].end == AWKWARD[1]["end"]
    assert by_copy[2].end == "\\N"


def test_an_encoding_error_mid_copy_is_raised_as_itself_and_stores_nothing(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    table = _table("via_lines", MetaData())  # temporary: one connection throughout
    many = [{**AWKWARD[1], "id": uuid4()} for _ in range(5000)]  # more than one read's worth
    try:
        with engine.connect() as conn:
            table.create(conn)
            conn.commit()
            with pytest.raises(TypeError, match="not JSON serializable"), conn.begin():
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                copy_rows(cursor, table, [*many, {**AWKWARD[1], "end": {1, 2}}])
            with conn.begin() as transaction:
                assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                lines = [f"{i}\tt{i}" for i in range(3)]
                copy_lines(cursor, table.name, ["n", "title"], lines)
                copy_lines(cursor, table.name, ["n"], iter([]))  # nothing: no statement
                titles = conn.execute(select(table.c.title).order_by(table.c.n)).scalars()
                assert list(titles) == ["t0", "t1", "t2"]
                transaction.rollback()
    finally:
        engine.dispose()
