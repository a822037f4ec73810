"""The follower's pace: under a stream of commits its batches start at most once per pace,
so they share their fixed costs; an event after a quiet spell is applied at once.

The paces here are far above the production one (FOLLOW_PACE) so the spacing they assert
stands out from the machine's noise.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from uuid import uuid4

import pytest
from sqlalchemy import Engine

from commands.application import WorldHistory
from commands.messages import AddEntity, CreateWorld
from commands.provenance import Provenance
from projections.runner import ProjectionRunner
from tests.integration.readside import dump_read_tables, migrated, poll

IDLE_WAIT = 0.5  # a wake-up without a notification runs an empty batch: no pace after it


class TimedRunner(ProjectionRunner):
    """A runner that records (monotonic start, events applied) of every batch."""

    def __init__(self, engine: Engine, history: WorldHistory, pace: float) -> None:
        super().__init__(engine, history, pace=pace)
        self.batches: list[tuple[float, int]] = []

    def run_batch(self, limit: int | None = None) -> int:
        started = time.monotonic()
        applied = super().run_batch(limit)
        self.batches.append((started, applied))
        return applied


@pytest.fixture
def fresh(database_factory: Callable[[str], str]) -> Iterator[tuple[Engine, WorldHistory]]:
    with migrated(database_factory, "pearl_pace") as made:
        yield made


class Follower:
    def __init__(self, runner: ProjectionRunner) -> None:
        self.runner = runner
        self.stop = threading.Event()
        self.thread = threading.Thread(target=runner.follow, args=(self.stop, IDLE_WAIT))

    def __enter__(self) -> Follower:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()

    def caught_up(self) -> bool:
        return self.runner.position() == self.runner.head()


def new_world(history: WorldHistory) -> Callable[[], None]:
    owner = str(uuid4())
    actor = Provenance(actor=owner)
    world_id = uuid4()
    history.handle(CreateWorld(world_id, owner_id=owner, name="Paced"), actor)

    def add() -> None:
        element = {"kind": "character", "name": "E"}
        history.handle(AddEntity(world_id, "main", "elements", str(uuid4()), element), actor)

    return add


def test_a_stream_of_commits_is_applied_in_batches_a_pace_apart(
    fresh: tuple[Engine, WorldHistory],
) -> None:
    engine, history = fresh
    pace = 0.3
    add = new_world(history)
    runner = TimedRunner(engine, history, pace)
    with Follower(runner) as follower:
        assert poll(follower.caught_up, timeout=20)
        before = len(runner.batches)
        began = time.monotonic()
        for _ in range(24):  # one commit every ~40 ms: several per pace
            add()
            time.sleep(0.04)
        streamed = time.monotonic() - began
        assert poll(follower.caught_up, timeout=20)
    live = runner.batches[before:]
    assert sum(applied for _, applied in live) == 24
    starts = [started for started, applied in live if applied]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= pace - 0.005  # monotonic clocks; a few ms of timer slack
    # at most one batch per pace while the stream lasted (and one after it), so most
    # batches carried several commits
    assert len([applied for _, applied in live if applied]) <= streamed / pace + 2
    rebuilt = dump_read_tables(engine)
    ProjectionRunner(engine, history, batch_size=1).rebuild()
    assert dump_read_tables(engine) == rebuilt


def test_an_event_after_a_quiet_spell_is_not_held_back(
    fresh: tuple[Engine, WorldHistory],
) -> None:
    engine, history = fresh
    pace = 1.5
    add = new_world(history)
    runner = TimedRunner(engine, history, pace)
    with Follower(runner) as follower:
        assert poll(follower.caught_up, timeout=20)
        time.sleep(pace)  # quiet for a whole pace since the last batch began
        written = time.monotonic()
        add()
        assert poll(follower.caught_up, timeout=20)
        seen = time.monotonic()
    assert seen - written < pace / 2  # applied without waiting out (most of) a pace
