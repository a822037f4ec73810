"""The recorder's reads on a real PostgreSQL: streams, several streams at once, the log.

What the application and the projector call: `select_events`, `select_streams` (the world
and its branch read in one round trip before a command decides), `select_notifications`,
`max_notification_id`; appends in a caller's session; listeners woken after a commit.
"""

from __future__ import annotations

import select
import time
from typing import Any
from uuid import uuid4

import psycopg2
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from commands.application import WorldHistory
from commands.messages import AddEntity, CreateWorld
from commands.recorder import PearlRecorder
from commands.world import branch_id
from tests.integration.recorder.support import TIMEOUT, WRITER, committed_ids, stored


class TestReadingBeforeDeciding:
    def test_a_cached_branch_catches_up_with_other_processes(
        self, history: WorldHistory, database: str
    ) -> None:
        other = WorldHistory.on_database(database)  # another API worker, say
        try:
            world_id = uuid4()
            history.handle(CreateWorld(world_id, WRITER.actor, "W"), WRITER)
            ids = [str(uuid4()) for _ in range(3)]

            def add(app: WorldHistory, entity_id: str) -> int:
                fields = {"name": entity_id, "kind": "k"}
                command = AddEntity(world_id, "main", "elements", entity_id, fields)
                return app.handle(command, WRITER).version

            assert add(history, ids[0]) == 1  # now cached here
            assert add(other, ids[1]) == 2
            assert add(history, ids[2]) == 3  # decided on the caught-up branch
            branch = history.load_branch(branch_id(world_id, "main"))
            assert set(branch.entities["elements"]) == set(ids)
        finally:
            other.close()

    def test_select_streams_reads_several_streams_after_versions(
        self, recorder: PearlRecorder
    ) -> None:
        one, two = uuid4(), uuid4()
        recorder.insert_events([stored(one, v) for v in (1, 2, 3)])
        recorder.insert_events([stored(two, v) for v in (1, 2)])
        found = recorder.select_streams({one: 0, two: 1, uuid4(): 0})
        assert [e.originator_version for e in found[one]] == [1, 2, 3]
        assert found[two] == [stored(two, 2)]
        assert len(found) == 3 and sum(map(len, found.values())) == 4


class TestTheRecorderInterface:
    def test_select_events_filters_and_orders(self, recorder: PearlRecorder) -> None:
        stream = uuid4()
        recorder.insert_events([stored(stream, v) for v in range(1, 6)])

        def versions(**kw: Any) -> list[int]:
            return [e.originator_version for e in recorder.select_events(stream, **kw)]

        assert versions() == [1, 2, 3, 4, 5]
        assert versions(gt=2, lte=4) == [3, 4]
        assert versions(desc=True, limit=2) == [5, 4]
        (first,) = recorder.select_events(str(stream), lte=1)
        assert first == stored(stream, 1)
        assert recorder.select_events(uuid4()) == []

    def test_select_notifications_honours_stop_topics_and_start(
        self, recorder: PearlRecorder
    ) -> None:
        assert recorder.max_notification_id() is None
        assert recorder.select_notifications(start=None, limit=10) == []
        stream = uuid4()
        ids = recorder.insert_events(
            [stored(stream, v, "tests:Odd" if v % 2 else "tests:Even") for v in range(1, 7)]
        )
        assert recorder.max_notification_id() == ids[-1]

        def pick(**kw: Any) -> list[int]:
            return [n.id for n in recorder.select_notifications(**kw)]

        assert pick(start=ids[1], limit=2) == ids[1:3]
        assert pick(start=ids[1], limit=2, inclusive_of_start=False) == ids[2:4]
        assert pick(start=None, limit=10, stop=ids[2]) == ids[:3]
        assert pick(start=None, limit=10, topics=["tests:Even"]) == ids[1::2]

    def test_an_append_wakes_listeners_after_it_commits(
        self, recorder: PearlRecorder, database: str
    ) -> None:
        url = create_engine(database).url
        listener = psycopg2.connect(
            host=url.host, port=url.port, user=url.username, dbname=url.database
        )
        try:
            listener.autocommit = True
            listener.cursor().execute(f"LISTEN {recorder.channel_name}")
            recorder.insert_events([stored(uuid4(), 1)])
            deadline = time.monotonic() + TIMEOUT
            while not listener.notifies and time.monotonic() < deadline:
                select.select([listener], [], [], 0.5)
                listener.poll()
            assert [n.channel for n in listener.notifies][:1] == [recorder.channel_name]
        finally:
            listener.close()

    def test_an_append_in_a_callers_session_commits_with_it(
        self, recorder: PearlRecorder, engine: Engine
    ) -> None:
        with Session(engine) as session:
            (kept,) = recorder.insert_events([stored(uuid4(), 1)], session=session)
            assert kept not in committed_ids(engine)
            session.commit()
        assert kept in committed_ids(engine)
        with Session(engine) as session:
            (dropped,) = recorder.insert_events([stored(uuid4(), 1)], session=session)
            session.rollback()
        assert dropped not in committed_ids(engine)
        pooled: Any = recorder.engine.raw_connection()
        try:  # the recorder hands its pooled connections back out of autocommit mode
            assert pooled.driver_connection.autocommit is False
        finally:
            pooled.close()
