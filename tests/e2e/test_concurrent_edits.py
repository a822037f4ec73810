"""Concurrent edits over HTTP: one winner per `If-Match` version, no lost update, and
concurrent edits of different entities of a branch all succeed (tests/soak/concurrency.py)."""

from __future__ import annotations

from tests.e2e.conftest import Server
from tests.soak.concurrency import concurrency

CLIENTS = 6
ROUNDS = 4


def test_concurrent_edits_keep_every_acknowledged_change(server: Server) -> None:
    result = concurrency(server.api, clients=CLIENTS, rounds=ROUNDS)
    assert result.ok, (result.found, result.notes)
    assert result.done == {"patches": 2 * CLIENTS * ROUNDS, "rounds": 2 * ROUNDS}
