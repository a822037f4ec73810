"""Batch sizes of the projector: small while following the log, big while behind it.

The sizes are shrunk (catch-up 4, following 2) so a few events exercise both; whatever the
batch sizes, the read tables must equal a rebuild one event at a time.
"""

from __future__ import annotations

import gc
import itertools
import threading
from collections.abc import Callable, Iterator
from uuid import uuid4

import pytest
from sqlalchemy import Engine

from commands.application import WorldHistory
from commands.messages import AddEntity, CreateWorld, UpdateEntity
from commands.provenance import Provenance
from projections import runner as runner_module
from projections.runner import ProjectionRunner
from tests.integration.readside import dump_read_tables, migrated, poll

CATCH_UP, FOLLOW = 4, 2


class RecordingRunner(ProjectionRunner):
    """A runner that records (limit asked, events applied) of every batch."""

    def __init__(self, engine: Engine, history: WorldHistory) -> None:
        super().__init__(engine, history)
        self.batches: list[tuple[int | None, int]] = []

    def run_batch(self, limit: int | None = None) -> int:
        applied = super().run_batch(limit)
        self.batches.append((limit, applied))
        return applied


@pytest.fixture
def fresh(
    database_factory: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Engine, WorldHistory]]:
    monkeypatch.setattr(runner_module, "CATCH_UP_BATCH", CATCH_UP)
    monkeypatch.setattr(runner_module, "FOLLOW_BATCH", FOLLOW)
    with migrated(database_factory, "pearl_batches") as made:
        yield made


def write_events(history: WorldHistory, updates: int) -> None:
    """A world with one element changed `updates` times."""
    owner = str(uuid4())
    actor = Provenance(actor=owner)
    world_id, element = uuid4(), str(uuid4())
    history.handle(CreateWorld(world_id, owner_id=owner, name="Batches"), actor)
    history.handle(
        AddEntity(world_id, "main", "elements", element, {"kind": "k", "name": "E"}), actor
    )
    for n in range(updates):
        change = {"metadata": {"n": n}, "tags": [f"t{n}"]}
        history.handle(UpdateEntity(world_id, "main", "elements", element, change), actor)


def rebuilt_one_by_one(engine: Engine, history: WorldHistory) -> object:
    ProjectionRunner(engine, history, batch_size=1).rebuild()
    return dump_read_tables(engine)


def test_catch_up_uses_catch_up_sized_batches(fresh: tuple[Engine, WorldHistory]) -> None:
    engine, history = fresh
    write_events(history, updates=9)
    runner = RecordingRunner(engine, history)
    head = runner.head()
    assert runner.catch_up() == head
    assert runner.position() == head
    assert {limit for limit, _ in runner.batches} == {CATCH_UP}
    assert [applied for _, applied in runner.batches[:-1]] == [CATCH_UP] * (head // CATCH_UP)
    projected = dump_read_tables(engine)
    assert projected == rebuilt_one_by_one(engine, history)


def test_an_explicit_batch_size_is_used_for_catching_up_too(
    fresh: tuple[Engine, WorldHistory],
) -> None:
    engine, history = fresh
    write_events(history, updates=3)
    runner = ProjectionRunner(engine, history, batch_size=3)
    assert (runner.batch_size, runner.catch_up_batch_size) == (3, 3)
    assert ProjectionRunner(engine, history).batch_size == FOLLOW
    reports: list[tuple[int, int]] = []
    runner.catch_up(lambda position, head: reports.append((position, head)))
    assert len(reports) == runner.head() // 3 + 1


def test_a_follower_behind_the_log_switches_to_catch_up_batches_and_back(
    fresh: tuple[Engine, WorldHistory],
) -> None:
    engine, history = fresh
    write_events(history, updates=12)
    runner = RecordingRunner(engine, history)
    stop = threading.Event()
    thread = threading.Thread(target=runner.follow, args=(stop, 0.05), daemon=True)
    thread.start()
    try:
        assert poll(lambda: runner.position() == runner.head(), timeout=20)
        caught_up = len(runner.batches)
        write_events(history, updates=0)  # two more events, applied live
        assert poll(lambda: runner.position() == runner.head(), timeout=20)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    batches = runner.batches
    assert batches[0] == (FOLLOW, FOLLOW)
    assert batches[1][0] == CATCH_UP
    for (limit, applied), (next_limit, _) in itertools.pairwise(batches):
        assert next_limit == (CATCH_UP if applied == limit else FOLLOW)
    # the live events came in following-sized batches
    assert any(limit == FOLLOW and applied > 0 for limit, applied in batches[caught_up:])
    projected = dump_read_tables(engine)
    assert projected == rebuilt_one_by_one(engine, history)


def test_batches_run_with_the_cyclic_collector_paused(
    fresh: tuple[Engine, WorldHistory], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's objects die with it: no garbage collection runs while it is applied or
    read ahead (pearl.collector), and the collector is on again between batches."""
    engine, history = fresh
    write_events(history, updates=9)
    seen: list[bool] = []

    class Watched(runner_module.ReadModel):
        def apply(self, position: int, event: object) -> None:
            seen.append(gc.isenabled())
            super().apply(position, event)

    monkeypatch.setattr(runner_module, "ReadModel", Watched)
    runner = RecordingRunner(engine, history)
    fetched = runner._fetch_unpaused

    def fetch(after: int, limit: int) -> runner_module.Batch:
        seen.append(gc.isenabled())
        return fetched(after, limit)

    monkeypatch.setattr(runner, "_fetch_unpaused", fetch)
    assert gc.isenabled()
    runner.catch_up()
    assert len(seen) > runner.head()  # every event applied, and every batch read
    assert not any(seen)
    assert gc.isenabled()
