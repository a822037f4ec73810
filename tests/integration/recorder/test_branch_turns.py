"""Commands on one branch take turns within a process (commands.branch_cache.BranchTurns):
threads writing to one cached branch never replay it again, and never wait for another
branch's writers."""

from __future__ import annotations

import threading
from typing import Any
from uuid import uuid4

import pytest

from commands.application import WorldHistory
from commands.messages import AddEntity, CreateWorld
from commands.provenance import Provenance
from commands.world import branch_id

OWNER = str(uuid4())


def new_world(history: WorldHistory) -> Any:
    world_id = uuid4()
    history.handle(CreateWorld(world_id, owner_id=OWNER, name="Turns"), Provenance(actor=OWNER))
    return world_id


def add(history: WorldHistory, world_id: Any, branch: str = "main") -> None:
    fields = {"kind": "character", "name": f"n{uuid4().hex[:6]}"}
    command = AddEntity(world_id, branch, "elements", str(uuid4()), fields)
    history.handle(command, Provenance(actor=OWNER))


def test_threads_writing_one_branch_load_it_once(
    history: WorldHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    world_id = new_world(history)
    add(history, world_id)  # loaded and cached
    replays: list[Any] = []
    real = history._events_of

    def counted(stream_id: Any, *args: Any, **kwargs: Any) -> Any:
        replays.append(stream_id)
        return real(stream_id, *args, **kwargs)

    monkeypatch.setattr(history, "_events_of", counted)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(15):
                add(history, world_id)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert replays == []  # every command found the branch in the cache
    assert history.load_branch(branch_id(world_id, "main")).head_version == 61


def test_a_command_waits_for_its_branchs_turn_but_not_for_another_branchs(
    history: WorldHistory,
) -> None:
    world_id, other = new_world(history), new_world(history)
    turn = history.turns.of(world_id, "main")
    while history.turns.of(other, "main") is turn:  # a stripe of its own (1 in 1024 is not)
        other = new_world(history)
    done = {"same": threading.Event(), "other": threading.Event()}

    def write(name: str, target: Any) -> None:
        add(history, target)
        done[name].set()

    with turn:  # as if a command on (world_id, main) were running
        threading.Thread(target=write, args=("other", other)).start()
        assert done["other"].wait(30)  # another branch goes on
        threading.Thread(target=write, args=("same", world_id)).start()
        assert not done["same"].wait(0.3)  # this one waits for the turn
    assert done["same"].wait(30)
