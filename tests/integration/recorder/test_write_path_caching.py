"""The write side's caches and held connection on a real PostgreSQL: a cached world still
sees what other processes changed, a command checks out one connection, and a connection
lost mid-command is replaced for the rest of it."""

from __future__ import annotations

import threading
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import OperationalError
from sqlalchemy import event

from commands.application import WorldHistory
from commands.errors import InvalidCommand
from commands.messages import AddEntity, CreateWorld, UpdateWorld
from commands.recorder import PearlRecorder
from commands.world import branch_id
from tests.integration.recorder.support import WRITER

THIRTEEN_MONTHS = {
    "months": [{"name": f"M{i}", "days": 28} for i in range(1, 14)],
    "year_zero": False,
    "eras": [],
}


def timeline_event(world_id: Any, event_id: str, month: int) -> AddEntity:
    fields = {"timeline_id": "t1", "title": event_id, "start": {"year": 1, "month": month}}
    return AddEntity(world_id, "main", "timeline_events", event_id, fields)


class TestTheCachedWorld:
    def test_catches_up_with_a_calendar_another_process_defined(
        self, history: WorldHistory, database: str
    ) -> None:
        world_id = uuid4()
        history.handle(CreateWorld(world_id, WRITER.actor, "W"), WRITER)
        history.handle(AddEntity(world_id, "main", "timelines", "t1", {"name": "T"}), WRITER)
        history.handle(timeline_event(world_id, "e1", 12), WRITER)  # world and branch cached
        with pytest.raises(InvalidCommand):
            history.handle(timeline_event(world_id, "e2", 13), WRITER)
        other = WorldHistory.on_database(database)
        try:
            other.handle(UpdateWorld(world_id, {"calendar": THIRTEEN_MONTHS}), WRITER)
        finally:
            other.close()
        history.handle(timeline_event(world_id, "e2", 13), WRITER)  # month 13 exists now
        world = history.world_cache.take(world_id)  # outside a command: lends nothing
        assert world is None
        assert len(history.world(world_id).calendar["months"]) == 13

    def test_a_refused_command_leaves_what_it_held_cached_as_it_was(
        self, history: WorldHistory
    ) -> None:
        world_id = uuid4()
        history.handle(CreateWorld(world_id, WRITER.actor, "W"), WRITER)
        history.handle(AddEntity(world_id, "main", "timelines", "t1", {"name": "T"}), WRITER)
        assert len(history.world_cache) == len(history.branch_cache) == 1
        stream = branch_id(world_id, "main")
        branch = history.branch_cache._items[stream][0]
        with pytest.raises(InvalidCommand):
            history.handle(timeline_event(world_id, "e1", 13), WRITER)
        assert len(history.world_cache) == 1
        assert history.branch_cache._items[stream][0] is branch  # kept: no replay next time
        assert branch.version == 2 and branch.entities["timeline_events"] == {}
        assert branch.pending_events == []
        assert history.handle(timeline_event(world_id, "e1", 12), WRITER).version == 2


class TestOneConnectionPerCommand:
    def test_the_read_and_the_append_share_one_checkout(self, history: WorldHistory) -> None:
        recorder = history.recorder
        assert isinstance(recorder, PearlRecorder)
        world_id = uuid4()
        history.handle(CreateWorld(world_id, WRITER.actor, "W"), WRITER)
        history.handle(AddEntity(world_id, "main", "timelines", "t0", {"name": "T"}), WRITER)
        checkouts: list[int] = []
        here = threading.get_ident()  # not the NOTIFY thread's checkouts

        @event.listens_for(recorder.engine, "checkout")
        def counted(*_: Any) -> None:
            if threading.get_ident() == here:
                checkouts.append(1)

        for n in range(3):
            command = AddEntity(world_id, "main", "timelines", f"t{n + 1}", {"name": "T"})
            assert history.handle(command, WRITER).version == n + 2
        assert len(checkouts) == 3

    def test_a_connection_lost_in_the_block_is_replaced_for_the_rest(
        self, history: WorldHistory
    ) -> None:
        recorder = history.recorder
        assert isinstance(recorder, PearlRecorder)
        with recorder.holding_connection():
            with recorder._cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                (first,) = cursor.fetchone()
            with pytest.raises(OperationalError), recorder._cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            with recorder._cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                (second,) = cursor.fetchone()
        assert second != first
        assert recorder.max_notification_id() is None  # the pool works on afterwards
