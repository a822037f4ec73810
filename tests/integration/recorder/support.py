"""Helpers of the recorder's tests: stored events, the committed ids, threads started together."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import StoredEvent
from sqlalchemy import Engine, text

from commands.provenance import Provenance

WRITER = Provenance(actor=str(uuid4()))
TIMEOUT = 30.0  # bound of every wait; none is expected to come near it


def stored(stream: UUID, version: int, topic: str = "tests:Happened") -> StoredEvent:
    return StoredEvent(stream, version, topic, f"{stream}/{version}".encode())


def committed_ids(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT id FROM pearl_events ORDER BY id")).scalars())


def run_all(workers: list[Callable[[], Any]]) -> list[Any]:
    """Run each callable in its own thread, started together; their results or exceptions."""
    results: list[Any] = [None] * len(workers)
    start = threading.Barrier(len(workers))

    def body(index: int) -> None:
        start.wait(TIMEOUT)
        try:
            results[index] = workers[index]()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
    return results
