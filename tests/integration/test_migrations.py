"""The Alembic migrations against a real PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from pearl.migrate import downgrade, upgrade

INITIAL = "0001"

# table -> {column: (type as PostgreSQL names it, nullable)}
INITIAL_TABLES: dict[str, dict[str, tuple[str, bool]]] = {
    "pearl_events": {
        "id": ("bigint", False),
        "originator_id": ("uuid", False),
        "originator_version": ("bigint", False),
        "topic": ("text", False),
        "state": ("bytea", False),
    },
    "pearl_snapshots": {
        "originator_id": ("uuid", False),
        "originator_version": ("bigint", False),
        "topic": ("text", False),
        "state": ("bytea", False),
    },
    "pearl_tracking": {
        "application_name": ("character varying", False),
        "notification_id": ("bigint", True),
    },
    "users": {
        "id": ("uuid", False),
        "email": ("text", False),
        "display_name": ("text", False),
        "password_hash": ("text", False),
        "created_at": ("timestamp with time zone", False),
    },
    "idempotency_keys": {
        "user_id": ("uuid", False),
        "key": ("text", False),
        "request_hash": ("text", False),
        "status_code": ("integer", False),
        "body": ("jsonb", False),
        "headers": ("jsonb", False),
        "created_at": ("timestamp with time zone", False),
    },
}


@pytest.fixture
def fresh_url(database_factory: Callable[[str], str]) -> str:
    """An empty database of this test's own, so the shared one is not disturbed."""
    return database_factory("pearl_migrations")


@pytest.fixture(scope="module")
def engine(database_factory: Callable[[str], str]) -> Iterator[Engine]:
    """An engine on a database of this module's own, migrated to head.

    The rows these tests write must not reach the session's database, whose notification log
    other tests project.
    """
    url = database_factory("pearl_schema")
    upgrade(url)
    engine = create_engine(url)
    yield engine
    engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def columns(engine: Engine, table: str) -> dict[str, tuple[str, bool]]:
    query = text(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = :table"
    )
    with engine.connect() as conn:
        rows = conn.execute(query, {"table": table}).all()
    return {name: (data_type, nullable == "YES") for name, data_type, nullable in rows}


def test_initial_revision_creates_exactly_the_expected_tables(fresh_url: str) -> None:
    upgrade(fresh_url, INITIAL)
    assert tables(fresh_url) == {*INITIAL_TABLES, "alembic_version"}


def test_head_has_the_expected_columns_and_keys(engine: Engine) -> None:
    assert set(INITIAL_TABLES) <= set(inspect(engine).get_table_names())
    for table, expected in INITIAL_TABLES.items():
        assert columns(engine, table) == expected, table
    inspector = inspect(engine)
    [aggregate_index] = [
        index
        for index in inspector.get_indexes("pearl_events")
        if index["name"] == "pearl_events_aggregate_idx"
    ]
    assert aggregate_index["unique"]
    assert aggregate_index["column_names"] == ["originator_id", "originator_version"]
    assert inspector.get_pk_constraint("pearl_events")["constrained_columns"] == ["id"]
    snapshots_key = inspector.get_pk_constraint("pearl_snapshots")["constrained_columns"]
    assert snapshots_key == ["originator_id", "originator_version"]
    idempotency_key = inspector.get_pk_constraint("idempotency_keys")["constrained_columns"]
    assert idempotency_key == ["user_id", "key"]
    created_at = [i["column_names"] for i in inspector.get_indexes("idempotency_keys")]
    assert ["created_at"] in created_at


def test_downgrade_to_base_then_upgrade_to_head_again(fresh_url: str) -> None:
    upgrade(fresh_url)
    downgrade(fresh_url, "base")
    assert tables(fresh_url) == {"alembic_version"}
    upgrade(fresh_url)
    assert set(INITIAL_TABLES) <= tables(fresh_url)


def test_the_same_aggregate_version_cannot_be_stored_twice(engine: Engine) -> None:
    insert = text(
        "INSERT INTO pearl_events (originator_id, originator_version, topic, state)"
        " VALUES (:id, 1, 'test:Event', '\\x00')"
    )
    originator_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(insert, {"id": originator_id})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert, {"id": originator_id})


def test_positions_increase_with_each_event(engine: Engine) -> None:
    insert = text(
        "INSERT INTO pearl_events (originator_id, originator_version, topic, state)"
        " VALUES (:id, :version, 'test:Event', '\\x00') RETURNING id"
    )
    originator_id = uuid.uuid4()
    with engine.begin() as conn:
        first = conn.execute(insert, {"id": originator_id, "version": 1}).scalar_one()
        second = conn.execute(insert, {"id": originator_id, "version": 2}).scalar_one()
    assert second > first


def test_emails_are_stored_lower_case(engine: Engine) -> None:
    insert = text(
        "INSERT INTO users (id, email, display_name, password_hash)"
        " VALUES (:id, :email, 'Ada', 'x')"
    )
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert, {"id": uuid.uuid4(), "email": f"Ada-{uuid.uuid4()}@Example.com"})
