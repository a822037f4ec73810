"""After a catch-up that applied many events the projector VACUUMs and ANALYZEs the read
tables, so the planner knows their new sizes at once and no dead row versions are left for
reads to step over (projections.vacuum); small catch-ups leave it to autovacuum. Manual
VACUUMs and ANALYZEs are told apart from autovacuum's by `vacuum_count` and `analyze_count`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from uuid import uuid4

import pytest
from sqlalchemy import Engine, text

from commands.application import WorldHistory
from commands.messages import AddEntity, CreateWorld, UpdateEntity
from commands.provenance import Provenance
from projections import runner as runner_module
from projections import vacuum
from projections.runner import ProjectionRunner
from tests.integration.readside import migrated


@pytest.fixture
def fresh(database_factory: Callable[[str], str]) -> Iterator[tuple[Engine, WorldHistory]]:
    with migrated(database_factory, "pearl_vacuum") as made:
        yield made


def write_elements(history: WorldHistory, count: int, updates: int = 0) -> None:
    """`count` elements, then `updates` metadata changes of the first of them."""
    owner = str(uuid4())
    world_id = uuid4()
    history.handle(CreateWorld(world_id, owner_id=owner, name="Stats"), Provenance(actor=owner))
    ids = [str(uuid4()) for _ in range(count)]
    for i, element_id in enumerate(ids):
        fields = {"kind": "character", "name": f"e{i}", "metadata": {"faction": f"f{i % 3}"}}
        command = AddEntity(world_id, "main", "elements", element_id, fields)
        history.handle(command, Provenance(actor=owner))
    for i in range(updates):
        change = UpdateEntity(world_id, "main", "elements", ids[0], {"metadata": {"n": i}})
        history.handle(change, Provenance(actor=owner))


def manual_analyses(engine: Engine, table: str = "rm_elements", what: str = "analyze") -> int:
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        found = conn.execute(
            text(f"SELECT {what}_count FROM pg_stat_user_tables WHERE relname = :t"), {"t": table}
        ).scalar()
    return int(found or 0)


def planned_rows(engine: Engine) -> float:
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE relname = 'rm_elements'")
        ).scalar()
    assert found is not None
    return float(found)


def wait_for_analyses(engine: Engine, at_least: int) -> int:
    """The manual ANALYZE count once it reaches `at_least` (statistics are reported a little
    after the command), or what it is after a few seconds."""
    deadline = time.monotonic() + 5
    while (count := manual_analyses(engine)) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def test_a_big_catch_up_vacuums_and_analyses_the_read_tables(
    fresh: tuple[Engine, WorldHistory], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, history = fresh
    monkeypatch.setattr(runner_module, "VACUUM_AFTER", 20)
    write_elements(history, 25, updates=10)
    assert manual_analyses(engine) == 0
    applied = ProjectionRunner(engine, history).catch_up()
    assert applied >= 20
    assert wait_for_analyses(engine, 1) == 1
    assert planned_rows(engine) == 25 + 10  # the planner now knows the table's size
    assert manual_analyses(engine, what="vacuum") == 1


def test_a_small_catch_up_leaves_the_table_to_autovacuum(
    fresh: tuple[Engine, WorldHistory], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, history = fresh
    monkeypatch.setattr(runner_module, "VACUUM_AFTER", 1000)
    write_elements(history, 5)
    assert ProjectionRunner(engine, history).catch_up() < 1000
    assert manual_analyses(engine, what="vacuum") == 0
    vacuum.vacuum_read_tables(engine)  # a marker: the count must go from 0 to exactly 1
    assert wait_for_analyses(engine, 1) == 1


def test_vacuum_read_tables_covers_every_read_table(
    fresh: tuple[Engine, WorldHistory],
) -> None:
    engine, _ = fresh
    vacuum.vacuum_read_tables(engine)
    for table in ("rm_worlds", "rm_branches", "rm_elements", "rm_timeline_events", "rm_changes"):
        deadline = time.monotonic() + 5
        while manual_analyses(engine, table) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert manual_analyses(engine, table) == 1, table
        assert manual_analyses(engine, table, what="vacuum") == 1, table
