"""A catch-up that at least doubles the read tables sets their secondary indexes aside and
builds them at its end (projections.set_aside): the rows come out as a catch-up with the
indexes writes them, the indexes come back exactly as the migrations made them, and none
is lost to a failed catch-up, a dead one or a busy table."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from commands.application import WorldHistory
from pearl import projection_commands
from projections import read_model, set_aside
from projections.runner import ProjectionRunner
from tests.integration.readside import differences, dump_read_tables, migrated, poll
from tests.integration.test_projector_crash import record_backlog


@pytest.fixture
def backlog(database_factory: Callable[[str], str]) -> Iterator[tuple[Engine, WorldHistory]]:
    """A migrated database holding two varied worlds (forks, merges, cascades), unprojected."""
    with migrated(database_factory, "pearl_set_aside") as (engine, history):
        record_backlog(history, random.Random(6), worlds=2)
        yield engine, history


def indexes(engine: Engine) -> dict[str, str]:
    """Every index of the tables whose indexes may be set aside: name -> definition."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes"
                " WHERE schemaname = 'public' AND tablename = ANY(:tables)"
            ),
            {"tables": set_aside.TABLES},
        ).all()
    return {str(name): str(definition) for name, definition in rows}


def secondary(found: dict[str, str]) -> set[str]:
    return {name for name, definition in found.items() if "UNIQUE" not in definition}


def test_only_a_catch_up_that_doubles_the_tables_is_worth_it() -> None:
    least = set_aside.SET_ASIDE_FROM
    assert set_aside.worth_setting_aside(0, least)
    assert not set_aside.worth_setting_aside(0, least - 1)
    assert set_aside.worth_setting_aside(least, 2 * least)
    assert not set_aside.worth_setting_aside(least + 1, 2 * least + 1)


def test_a_big_catch_up_loads_without_them_and_builds_them_again(
    backlog: tuple[Engine, WorldHistory], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, history = backlog
    before = indexes(engine)
    assert len(secondary(before)) == 32
    ProjectionRunner(engine, history).catch_up()  # too small: indexes kept all along
    assert set_aside.set_aside_names(engine) == []
    with_indexes = dump_read_tables(engine)

    monkeypatch.setattr(set_aside, "SET_ASIDE_FROM", 10)
    seen: list[tuple[dict[str, str], list[str]]] = []
    runner = ProjectionRunner(engine, history, batch_size=100)
    applied = runner.rebuild(lambda position, head: seen.append((indexes(engine), [])))
    assert applied > 600 and len(seen) > 5
    during, _ = seen[0]
    assert secondary(during) == set(), "loaded with the secondary indexes in place"
    assert set(during) == set(before) - secondary(before), "a unique index was dropped"
    assert indexes(engine) == before
    assert set_aside.set_aside_names(engine) == []
    assert differences(with_indexes, dump_read_tables(engine)) == {}


def test_a_failed_catch_up_builds_them_before_it_raises(
    backlog: tuple[Engine, WorldHistory], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, history = backlog
    before = indexes(engine)
    monkeypatch.setattr(set_aside, "SET_ASIDE_FROM", 10)
    applied = [0]
    real_apply = read_model.ReadModel.apply

    def failing(self: Any, position: int, event: Any) -> None:
        applied[0] += 1
        if applied[0] == 250:
            raise RuntimeError("an event the projector cannot apply")
        real_apply(self, position, event)

    monkeypatch.setattr(read_model.ReadModel, "apply", failing)
    with pytest.raises(RuntimeError, match="cannot apply"):
        ProjectionRunner(engine, history, batch_size=100).catch_up()
    assert indexes(engine) == before
    assert set_aside.set_aside_names(engine) == []


def test_what_a_dead_catch_up_left_aside_is_built_when_a_projector_follows(
    backlog: tuple[Engine, WorldHistory],
) -> None:
    engine, history = backlog
    before = indexes(engine)
    assert set_aside.set_aside(engine) == 32  # as if the process died right after
    assert len(set_aside.set_aside_names(engine)) == 32
    assert secondary(indexes(engine)) == set()
    stop = threading.Event()
    runner = ProjectionRunner(engine, history)
    follower = threading.Thread(target=runner.follow, args=(stop, 0.05))
    follower.start()
    try:
        assert poll(lambda: indexes(engine) == before, timeout=30)
        assert set_aside.set_aside_names(engine) == []
        assert poll(lambda: runner.position() == runner.head(), timeout=30)
    finally:
        stop.set()
        follower.join(10)


def test_what_a_dead_catch_up_left_aside_is_built_by_the_next_small_one(
    backlog: tuple[Engine, WorldHistory],
) -> None:
    engine, history = backlog
    before = indexes(engine)
    set_aside.set_aside(engine)
    seen: list[dict[str, str]] = []
    ProjectionRunner(engine, history).catch_up(lambda *_: seen.append(indexes(engine)))
    assert seen and seen[0] == before, "the small catch-up ran without the indexes"
    assert set_aside.set_aside_names(engine) == []


def test_a_table_busy_with_a_long_read_keeps_every_index(
    backlog: tuple[Engine, WorldHistory], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, _ = backlog
    before = indexes(engine)
    monkeypatch.setattr(set_aside, "LOCK_TIMEOUT", "200ms")
    with engine.connect() as reader:
        reader.execute(text("SELECT count(*) FROM rm_timeline_events"))  # holds its lock
        assert set_aside.set_aside(engine) == 0
        reader.rollback()
    assert indexes(engine) == before
    assert set_aside.set_aside_names(engine) == []


def test_building_them_twice_is_harmless(backlog: tuple[Engine, WorldHistory]) -> None:
    engine, _ = backlog
    before = indexes(engine)
    set_aside.set_aside(engine)
    with engine.begin() as conn:  # someone built one meanwhile
        [definition] = conn.execute(
            text(f"SELECT definition FROM {set_aside.TABLE} WHERE name = :name"),
            {"name": "public.rm_changes_world_idx"},
        ).scalars()
        conn.exec_driver_sql(definition)
    assert set_aside.restore(engine) == 32
    assert indexes(engine) == before
    assert set_aside.restore(engine) == 0


def test_status_tells_of_indexes_set_aside(
    backlog: tuple[Engine, WorldHistory],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine, _ = backlog
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    assert projection_commands.status() == 0
    assert "set aside" not in capsys.readouterr().out
    set_aside.set_aside(engine)
    assert projection_commands.status() == 0
    assert "32 read-table indexes set aside" in capsys.readouterr().out
    set_aside.restore(engine)


def test_a_rebuild_beside_a_running_follower_sets_them_aside_and_back(
    backlog: tuple[Engine, WorldHistory], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pearl projections rebuild` while `pearl up` runs: both apply batches, serialised on
    the position row, while the indexes are aside; each event lands once."""
    engine, history = backlog
    before = indexes(engine)
    ProjectionRunner(engine, history).catch_up()
    expected = dump_read_tables(engine)
    monkeypatch.setattr(set_aside, "SET_ASIDE_FROM", 10)
    follower = ProjectionRunner(engine, history, batch_size=3)
    stop = threading.Event()
    thread = threading.Thread(target=follower.follow, args=(stop, 0.05), daemon=True)
    thread.start()
    try:
        seen: list[set[str]] = []
        rebuilder = ProjectionRunner(engine, history, batch_size=50)
        rebuilder.rebuild(lambda *_: seen.append(secondary(indexes(engine))))
        assert seen and seen[0] == set(), "the rebuild kept its indexes"
        assert poll(lambda: follower.position() == follower.head(), timeout=10)
        assert indexes(engine) == before
        assert differences(expected, dump_read_tables(engine)) == {}
    finally:
        stop.set()
        thread.join(timeout=10)


class BatchInFlight:
    """A projector batch caught mid-way: it holds the position row (unless there is none),
    has written one read table, and is about to write another, whose lock a table-by-table
    DROP or CREATE INDEX would already hold."""

    def __init__(self, engine: Engine) -> None:
        self.raw = engine.raw_connection()
        self.cursor = self.raw.cursor()
        self.cursor.execute(
            "SELECT position FROM projection_positions WHERE name = 'read_model' FOR UPDATE"
        )
        self.cursor.execute("LOCK TABLE rm_timelines IN ROW EXCLUSIVE MODE")

    def write_another_table_and_commit(self) -> None:
        self.cursor.execute("LOCK TABLE rm_changes IN ROW EXCLUSIVE MODE")
        self.raw.commit()
        self.raw.close()


def run_beside_a_batch(engine: Engine, step: Callable[[Engine], int]) -> list[int]:
    """`step(engine)` started while a batch is in flight, which then finishes: what it
    returned (nothing, when it raised)."""
    batch = BatchInFlight(engine)
    done: list[int] = []
    worker = threading.Thread(target=lambda: done.append(step(engine)), daemon=True)
    worker.start()
    worker.join(0.5)  # it waits for the batch (or, table by table, for its first table)
    batch.write_another_table_and_commit()  # deadlocked here, or the step did, before
    worker.join(30)
    return done


@pytest.mark.parametrize("step", ["set_aside", "restore"])
def test_a_batch_in_flight_is_waited_for_not_deadlocked_with(
    backlog: tuple[Engine, WorldHistory], step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, history = backlog
    ProjectionRunner(engine, history).catch_up()
    if step == "restore":
        set_aside.set_aside(engine)
    monkeypatch.setattr(set_aside, "BUILD_ATTEMPTS", 1)  # a deadlock would surface
    before = set(indexes(engine))
    assert run_beside_a_batch(engine, getattr(set_aside, step)) == [32]
    changed = before ^ set(indexes(engine))
    assert len(changed) == 32 and all(name.startswith("rm_") for name in changed)


def test_without_a_position_row_a_build_that_deadlocks_is_tried_again(
    backlog: tuple[Engine, WorldHistory],
) -> None:
    """Before any batch has made the position row there is nothing to wait on: PostgreSQL
    breaks the deadlock by failing the build, which starts again once the batch is done."""
    engine, _ = backlog
    before = indexes(engine)
    set_aside.set_aside(engine)
    assert run_beside_a_batch(engine, set_aside.restore) == [32]
    assert indexes(engine) == before


def test_a_rebuild_from_the_cli_says_when_it_builds_them(
    backlog: tuple[Engine, WorldHistory],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """After the progress bar reaches 100% the build may take a while: it is announced."""
    engine, _ = backlog
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setattr(set_aside, "SET_ASIDE_FROM", 10)
    assert projection_commands.rebuild() == 0
    shown = capsys.readouterr().err
    lines = [line for line in shown.split("\n") if line.startswith("pearl: ")]
    assert lines[0] == "pearl: set aside 32 read-table indexes for the catch-up"
    assert "pearl: building 32 read-table indexes set aside" in lines
    assert any(line.startswith("pearl: built 32 read-table indexes in") for line in lines)
    assert set_aside.set_aside_names(engine) == []
