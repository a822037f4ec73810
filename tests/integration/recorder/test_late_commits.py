"""The event recorder on a real PostgreSQL: parallel appends, and readers that never skip.

A writer may take its notification id and commit late while later writers commit higher
ids; a reader following the log must then wait for it rather than pass it (and never see
it). Appends to different streams commit in parallel; appends racing for one stream
version have exactly one winner.
"""

from __future__ import annotations

import functools
import threading
import time
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.orm import Session

from commands.application import WorldHistory
from commands.messages import AddEntity, CreateWorld
from commands.recorder import PearlRecorder
from commands.world import branch_id
from tests.integration.recorder.support import TIMEOUT, WRITER, committed_ids, run_all, stored


class TestALateCommit:
    def test_a_following_reader_waits_for_it_and_skips_nothing(
        self, recorder: PearlRecorder, engine: Engine
    ) -> None:
        before = recorder.insert_events([stored(uuid4(), 1)])
        assert recorder.prove_horizon() == before[0]  # as far as the reader has followed
        stalled = Session(engine)
        (late,) = recorder.insert_events([stored(uuid4(), 1)], session=stalled)  # id taken
        rolled_back = Session(engine)
        (gone,) = recorder.insert_events([stored(uuid4(), 1)], session=rolled_back)
        rolled_back.rollback()
        later = [recorder.insert_events([stored(uuid4(), 1)])[0] for _ in range(5)]
        assert before[0] < late < gone < min(later)
        # The later ids are committed and visible while the late one is not: a reader that
        # trusted max(id) would pass it now.
        visible = committed_ids(engine)
        assert late not in visible and set(later) <= set(visible)

        recorder.reader_lock_timeout_ms = 100  # polls give up quickly while the writer stalls
        consumed: list[int] = []
        polls_while_stalled: list[list[int]] = []
        committing = threading.Event()
        done = threading.Event()

        def follow() -> None:
            position = 0
            deadline = time.monotonic() + TIMEOUT
            while not done.is_set() and time.monotonic() < deadline:
                page = recorder.select_notifications(
                    start=position, limit=3, inclusive_of_start=False
                )
                ids = [n.id for n in page]
                if not committing.is_set():
                    polls_while_stalled.append(ids)
                consumed.extend(ids)
                if ids:
                    position = ids[-1]
                if set(later) <= set(consumed):
                    done.set()

        reader = threading.Thread(target=follow)
        reader.start()
        deadline = time.monotonic() + TIMEOUT
        while len(polls_while_stalled) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        committing.set()
        stalled.commit()
        stalled.close()
        reader.join(TIMEOUT)
        assert not reader.is_alive()

        assert len(polls_while_stalled) >= 5
        seen_while_stalled = [i for ids in polls_while_stalled for i in ids]
        assert seen_while_stalled and max(seen_while_stalled) < late
        assert consumed == sorted(consumed)
        assert consumed == [*before, late, *later]  # in order, only the rolled-back gap
        assert consumed == committed_ids(engine)

    def test_the_horizon_waits_for_appends_in_flight(
        self, recorder: PearlRecorder, engine: Engine
    ) -> None:
        recorder.insert_events([stored(uuid4(), 1)])
        stalled = Session(engine)
        (late,) = recorder.insert_events([stored(uuid4(), 1)], session=stalled)
        proven: list[int] = []
        prover = threading.Thread(target=lambda: proven.append(recorder.prove_horizon()))
        prover.start()
        prover.join(0.5)
        assert prover.is_alive() and not proven  # held up by the open transaction
        stalled.commit()
        stalled.close()
        prover.join(TIMEOUT)
        assert proven and proven[0] >= late

    def test_a_reader_that_times_out_keeps_the_last_proven_horizon(
        self, recorder: PearlRecorder, engine: Engine
    ) -> None:
        (first,) = recorder.insert_events([stored(uuid4(), 1)])
        assert recorder.prove_horizon() == first
        with Session(engine) as stalled:
            recorder.insert_events([stored(uuid4(), 1)], session=stalled)
            recorder.reader_lock_timeout_ms = 50
            assert recorder.prove_horizon() == first
            assert [n.id for n in recorder.select_notifications(start=1, limit=10)] == [first]
            stalled.rollback()


class TestParallelAppends:
    def test_writers_to_different_streams_all_commit(
        self, recorder: PearlRecorder, engine: Engine
    ) -> None:
        streams = [uuid4() for _ in range(8)]

        def append(stream: UUID) -> list[int]:
            return [recorder.insert_events([stored(stream, v)])[0] for v in range(1, 21)]

        results = run_all([functools.partial(append, s) for s in streams])
        ids = [i for result in results for i in result]
        assert len(ids) == len(set(ids)) == 160
        assert sorted(ids) == committed_ids(engine)
        for stream, result in zip(streams, results, strict=True):
            assert result == sorted(result)
            assert [e.originator_version for e in recorder.select_events(stream)] == list(
                range(1, 21)
            )
        notifications = recorder.select_notifications(start=1, limit=1000)
        assert [n.id for n in notifications] == sorted(ids)

    def test_an_open_append_does_not_hold_up_another_stream(
        self, recorder: PearlRecorder, engine: Engine
    ) -> None:
        with Session(engine) as open_append:
            (held,) = recorder.insert_events([stored(uuid4(), 1)], session=open_append)
            other: list[int] = []
            writer = threading.Thread(
                target=lambda: other.extend(recorder.insert_events([stored(uuid4(), 1)]))
            )
            writer.start()
            writer.join(TIMEOUT)
            assert not writer.is_alive() and other[0] > held
            assert other[0] in committed_ids(engine)
            open_append.commit()

    def test_several_events_get_ids_in_their_order(self, recorder: PearlRecorder) -> None:
        stream = uuid4()
        ids = recorder.insert_events([stored(stream, v) for v in range(1, 11)])
        assert list(ids) == sorted(ids) and len(set(ids)) == 10
        notes = recorder.select_notifications(start=ids[0], limit=100)
        assert [(n.id, n.originator_version) for n in notes] == list(
            zip(ids, range(1, 11), strict=True)
        )


class TestRacesForOneStream:
    def test_exactly_one_writer_wins_each_version(
        self, recorder: PearlRecorder, engine: Engine
    ) -> None:
        stream = uuid4()
        for version in range(1, 6):
            results = run_all(
                [functools.partial(recorder.insert_events, [stored(stream, version)])] * 6
            )
            winners = [r for r in results if not isinstance(r, Exception)]
            assert len(winners) == 1, results
            assert all(isinstance(r, IntegrityError) for r in results if r not in winners)
        assert [e.originator_version for e in recorder.select_events(stream)] == [1, 2, 3, 4, 5]
        assert len(committed_ids(engine)) == 5

    def test_racing_commands_are_retried_onto_the_latest_version(
        self, history: WorldHistory, recorder: PearlRecorder
    ) -> None:
        world_id = uuid4()
        history.handle(CreateWorld(world_id, WRITER.actor, "W"), WRITER)
        commands = [
            AddEntity(world_id, "main", "elements", str(uuid4()), {"name": f"E{n}", "kind": "k"})
            for n in range(5)  # each loses at most 4 races: within the 5 attempts
        ]
        results = run_all([functools.partial(history.handle, c, WRITER) for c in commands])
        assert not [r for r in results if isinstance(r, Exception)], results
        assert sorted(r.version for r in results) == [1, 2, 3, 4, 5]
        assert history.load_branch(branch_id(world_id, "main")).head_version == 5

    def test_a_version_taken_in_an_open_session_is_refused_once_it_commits(
        self, recorder: PearlRecorder, engine: Engine
    ) -> None:
        stream = uuid4()
        with Session(engine) as first:
            recorder.insert_events([stored(stream, 1)], session=first)
            racing: list[object] = []

            def race() -> None:
                try:
                    recorder.insert_events([stored(stream, 1)])
                except Exception as error:
                    racing.append(error)

            rival = threading.Thread(target=race)
            rival.start()
            rival.join(0.3)
            assert rival.is_alive()  # waits on the unique index for the open transaction
            first.commit()
            rival.join(TIMEOUT)
            assert not rival.is_alive()
            assert len(racing) == 1 and isinstance(racing[0], IntegrityError)
        with Session(engine) as late, pytest.raises(SQLIntegrityError):
            recorder.insert_events([stored(stream, 1)], session=late)  # what handle() catches
        assert [e.originator_version for e in recorder.select_events(stream)] == [1]
