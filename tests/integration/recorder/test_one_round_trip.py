"""A command on a cached world and branch is one statement: decided on the cached state and
appended on condition that neither stream moved. When one did (another process wrote), the
statement records nothing, the branch is undone and stays cached, and the command is decided
again on the latest state; a refusal on cached state is checked again the same way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.application import WorldHistory
from commands.errors import InvalidCommand, StaleVersion
from commands.messages import AddEntity, CreateWorld, UpdateEntity, UpdateWorld
from commands.recorder import PearlRecorder, StreamMoved
from commands.world import branch_id
from tests.integration.recorder.support import WRITER, stored

MONTHS = [{"name": f"M{i}", "days": 28} for i in range(1, 14)]
THIRTEEN_MONTHS: dict[str, Any] = {"months": MONTHS, "year_zero": False, "eras": []}
TWELVE_MONTHS: dict[str, Any] = {**THIRTEEN_MONTHS, "months": MONTHS[:12]}


@contextmanager
def statements(recorder: PearlRecorder) -> Iterator[list[int]]:
    """Count the statements this thread sends through the recorder in the block."""
    counted: list[int] = []
    here = threading.get_ident()
    original = recorder._cursor

    @contextmanager
    def counting() -> Iterator[Any]:
        with original() as cursor:
            if threading.get_ident() == here:
                counted.append(1)
            yield cursor

    recorder._cursor = counting  # type: ignore[method-assign]
    try:
        yield counted
    finally:
        del recorder._cursor


@pytest.fixture
def other(database: str) -> Iterator[WorldHistory]:
    """Another process's application (another API worker, say)."""
    app = WorldHistory.on_database(database)
    yield app
    app.close()


def element(world_id: UUID, entity_id: str) -> AddEntity:
    return AddEntity(world_id, "main", "elements", entity_id, {"name": entity_id, "kind": "k"})


def started(history: WorldHistory) -> UUID:
    """A world whose world and main branch are cached in `history`."""
    world_id = uuid4()
    history.handle(CreateWorld(world_id, WRITER.actor, "W"), WRITER)
    history.handle(element(world_id, "e0"), WRITER)
    assert branch_id(world_id, "main") in history.branch_cache
    return world_id


class TestTheSteadyState:
    def test_a_command_on_cached_state_is_one_statement(self, history: WorldHistory) -> None:
        world_id = started(history)
        assert isinstance(history.recorder, PearlRecorder)
        with statements(history.recorder) as counted:
            for n in range(1, 4):
                assert history.handle(element(world_id, f"e{n}"), WRITER).version == n + 1
        assert len(counted) == 3


class TestAnotherProcessWrote:
    def test_to_the_branch_the_command_lands_after_it_and_the_branch_stays_cached(
        self, history: WorldHistory, other: WorldHistory
    ) -> None:
        world_id = started(history)
        stream = branch_id(world_id, "main")
        cached = history.branch_cache._items[stream][0]
        assert other.handle(element(world_id, "theirs"), WRITER).version == 2
        assert history.handle(element(world_id, "ours"), WRITER).version == 3
        assert history.branch_cache._items[stream][0] is cached  # not replayed from scratch
        assert set(cached.entities["elements"]) == {"e0", "theirs", "ours"}
        assert set(other.load_branch(stream).entities["elements"]) == {"e0", "theirs", "ours"}
        assert cached.version == 4

    def test_to_the_world_the_command_is_decided_on_the_new_world(
        self, history: WorldHistory, other: WorldHistory
    ) -> None:
        world_id = uuid4()
        calendar = {"calendar": THIRTEEN_MONTHS}
        history.handle(CreateWorld(world_id, WRITER.actor, "W", calendar=THIRTEEN_MONTHS), WRITER)
        history.handle(AddEntity(world_id, "main", "timelines", "t1", {"name": "T"}), WRITER)
        assert history.world(world_id).calendar == calendar["calendar"]
        other.handle(UpdateWorld(world_id, {"calendar": TWELVE_MONTHS}), WRITER)
        late = {"timeline_id": "t1", "title": "late", "start": {"year": 1, "month": 13}}
        with pytest.raises(InvalidCommand):  # month 13 was fine on the cached world only
            history.handle(AddEntity(world_id, "main", "timeline_events", "e1", late), WRITER)
        stream = branch_id(world_id, "main")
        assert "e1" not in other.load_branch(stream).entities["timeline_events"]
        fine = {**late, "start": {"year": 1, "month": 12}}
        outcome = history.handle(AddEntity(world_id, "main", "timeline_events", "e1", fine), WRITER)
        assert outcome.version == 2

    def test_a_refusal_on_cached_state_is_decided_again_on_the_latest(
        self, history: WorldHistory, other: WorldHistory
    ) -> None:
        world_id = started(history)
        changed = UpdateEntity(world_id, "main", "elements", "e0", {"name": "x"}, 1)
        assert other.handle(changed, WRITER).version == 2  # e0 is at version 2 now
        update = UpdateEntity(world_id, "main", "elements", "e0", {"name": "y"}, 2)
        assert history.handle(update, WRITER).version == 3  # cached e0 said version 1
        with pytest.raises(StaleVersion):
            history.handle(
                UpdateEntity(world_id, "main", "elements", "e0", {"name": "z"}, 2), WRITER
            )
        entity = other.load_branch(branch_id(world_id, "main")).get("elements", "e0")
        assert (entity["name"], entity["version"]) == ("y", 3)


class TestALostRaceAfterALoad:
    def test_the_loaded_branch_is_undone_and_kept_not_replayed_again(
        self, history: WorldHistory, other: WorldHistory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A branch not cached yet is loaded, then another process appends to it before the
        save: the retry catches the loaded branch up, it does not replay it from its start."""
        world_id = started(other)
        stream = branch_id(world_id, "main")
        replays: list[UUID] = []
        events_of = history._events_of

        def counting(stream_id: UUID, after: int = 0, upto: int | None = None) -> Any:
            if after == 0:
                replays.append(stream_id)
            return events_of(stream_id, after, upto)

        monkeypatch.setattr(history, "_events_of", counting)
        world_and_branch = history._world_and_branch
        rivals = [element(world_id, "rival")]

        def loaded_then_overtaken(world: UUID, name: str) -> Any:
            found = world_and_branch(world, name)
            if rivals:
                other.handle(rivals.pop(), WRITER)
            return found

        monkeypatch.setattr(history, "_world_and_branch", loaded_then_overtaken)
        outcome = history.handle(element(world_id, "ours"), WRITER)
        assert replays == [stream]
        assert outcome.version == 3  # e0, then the rival's, then ours
        assert stream in history.branch_cache
        names = [e["name"] for e in other.load_branch(stream).entities["elements"].values()]
        assert sorted(names) == ["e0", "ours", "rival"]


class TestAWriterThatLostTakesItsTurn:
    def test_its_retry_is_not_overtaken_by_another_process(
        self, history: WorldHistory, other: WorldHistory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each time `history` has read the branch, `other` tries to append to it. The first
        time it does, and `history` loses; the retry holds the branch's turn, so `other`'s
        append waits until `history` has appended, and one retry is enough."""
        world_id = started(other)
        history.retries = 2
        world_and_branch = history._world_and_branch
        rivals: list[threading.Thread] = []
        overtook: list[bool] = []

        def read_then_rivalled(world: UUID, name: str) -> Any:
            found = world_and_branch(world, name)
            n = len(rivals)
            rival = threading.Thread(target=other.handle, args=(element(world_id, f"r{n}"), WRITER))
            rivals.append(rival)
            rival.start()
            rival.join(0.5)
            overtook.append(not rival.is_alive())
            return found

        monkeypatch.setattr(history, "_world_and_branch", read_then_rivalled)
        outcome = history.handle(element(world_id, "ours"), WRITER)
        for rival in rivals:
            rival.join(10)
        assert overtook == [True, False]  # the second rival waited for the turn
        assert outcome.version == 3  # e0, r0, ours
        stream = branch_id(world_id, "main")
        branch = other.load_branch(stream)
        assert branch.head_version == 4  # r1 went after ours
        assert branch.get("elements", "r1")["version"] == 4


class TestTheGuardedAppend:
    def test_records_nothing_when_the_named_stream_moved(self, recorder: PearlRecorder) -> None:
        world, branch = uuid4(), uuid4()
        recorder.insert_events([stored(world, 1), stored(world, 2)])
        with pytest.raises(StreamMoved):
            recorder.insert_events([stored(branch, 1)], unchanged=(world, 1))
        assert recorder.select_events(branch) == []
        recorder.insert_events([stored(branch, 1)], unchanged=(world, 2))
        assert recorder.select_events(branch) == [stored(branch, 1)]

    def test_an_append_prepares_again_on_a_connection_that_forgot(
        self, recorder: PearlRecorder
    ) -> None:
        stream = uuid4()
        with recorder.holding_connection():
            recorder.insert_events([stored(stream, 1)])
            with recorder._cursor() as cursor:
                cursor.execute("DEALLOCATE ALL")
            recorder.insert_events([stored(stream, 2)], unchanged=(stream, 1))
            recorder.insert_events([stored(stream, 3)])
        assert [e.originator_version for e in recorder.select_events(stream)] == [1, 2, 3]
