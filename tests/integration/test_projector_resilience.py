"""A follower that meets an event it cannot apply keeps running, retries, and resumes once the
cause is gone, applying nothing twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from uuid import uuid4

import pytest
from sqlalchemy import Engine, create_engine, text

from commands.application import WorldHistory
from commands.messages import AddEntity, CreateWorld
from commands.provenance import Provenance
from pearl.migrate import upgrade
from projections.runner import ProjectionRunner

WRITER = Provenance(actor=str(uuid4()))


@pytest.fixture
def database(database_factory: Callable[[str], str]) -> str:
    """A fresh migrated database of its own."""
    url = database_factory("pearl_resilience")
    upgrade(url)
    return url


@pytest.fixture
def engine(database: str) -> Iterator[Engine]:
    """An engine on that database."""
    created = create_engine(database)
    yield created
    created.dispose()


def _poll(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class TestAnEventThatCannotBeApplied:
    def test_the_follower_waits_retries_and_resumes(self, database: str, engine: Engine) -> None:
        history = WorldHistory.on_database(database)
        world_id = uuid4()
        history.handle(CreateWorld(world_id, WRITER.actor, "W"), WRITER)
        runner = ProjectionRunner(engine, history)
        stop = threading.Event()
        follower = threading.Thread(target=runner.follow, args=(stop, 0.05), daemon=True)
        follower.start()
        try:
            head = runner.head()
            assert _poll(lambda: runner.position() == head)
            with engine.begin() as conn:  # a stored event no projector can decode
                bogus = conn.execute(
                    text(
                        "INSERT INTO pearl_events (originator_id, originator_version, topic, state)"
                        " VALUES (:id, 1, 'nowhere:Nothing', '{}') RETURNING id"
                    ),
                    {"id": uuid4()},
                ).scalar_one()
            good = history.handle(
                AddEntity(world_id, "main", "elements", str(uuid4()), {"kind": "k", "name": "n"}),
                WRITER,
            )
            time.sleep(1.0)
            assert follower.is_alive()
            assert runner.position() < bogus  # stuck before it, not skipping it
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM pearl_events WHERE id = :id"), {"id": bogus})
            target = good.position
            assert target is not None
            assert _poll(lambda: runner.position() >= target, timeout=40.0)
            with engine.connect() as conn:
                logged = conn.execute(text("SELECT count(*) FROM rm_changes")).scalar_one()
                stored = conn.execute(text("SELECT count(*) FROM pearl_events")).scalar_one()
            assert logged == stored
        finally:
            stop.set()
            follower.join(timeout=10)
        assert not follower.is_alive()
