"""`append`: commands handled in-process, one event each, against single-row INSERT + COMMIT.

Each writer creates its own world, then adds elements to its `main` branch through
`WorldHistory.handle` (the application `WorldHistory.on_database` builds, so whatever
recorder it wires in is what is measured) until the time is up. Threads share one
application (its branch cache and sessions are thread-safe); processes build one each,
which sidesteps the GIL on a small machine. The baseline runs the same number of writers in
the same mode, each its own stream, rows the size of the events just stored; with threads
the two alternate in three rounds (the figures are their means), so that drift in the load
or in the disk's fsync latency hits both alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import uuid4

from bench import baseline, concurrency
from bench.concurrency import Stop
from bench.report import Figure, progress, ratio
from commands.application import WorldHistory
from commands.messages import AddEntity, CreateWorld
from commands.provenance import Provenance

TARGETS = {1: 0.8, 16: 0.6}
ROUNDS = 3  # alternating rounds of ours and the baseline (threads)
_shared: dict[str, WorldHistory] = {}


def _history(database_url: str, shared: bool) -> WorldHistory:
    if not shared:
        return WorldHistory.on_database(database_url)
    if database_url not in _shared:
        _shared[database_url] = WorldHistory.on_database(database_url)
    return _shared[database_url]


def command_job(arg: tuple[str, bool], ready: Callable[[], None], stop: Stop) -> int:
    """One writer: a world of its own, then AddEntity commands until stopped."""
    database_url, shared = arg
    history = _history(database_url, shared)
    actor = str(uuid4())
    world_id = uuid4()
    history.handle(CreateWorld(world_id, owner_id=actor, name="Append"), Provenance(actor))
    fields: dict[str, Any] = {"kind": "character", "name": "Someone", "metadata": {"n": 1}}
    count = 0
    ready()
    while not stop.is_set():
        command = AddEntity(world_id, "main", "elements", str(uuid4()), fields)
        history.handle(command, Provenance(actor, correlation_id=f"bench-{count}"))
        count += 1
    if not shared:
        history.close()
    return count


def run(database_url: str, seconds: float, modes: tuple[str, ...]) -> list[Figure]:
    figures: list[Figure] = []
    for writers in (1, 16):
        for mode in modes if writers > 1 else ("threads",):
            label = f"{writers} writer{'s' if writers > 1 else ''}"
            label += f" ({mode})" if writers > 1 else ""
            shared = mode == "threads"
            # Alternate ours and the baseline so that drift (other jobs, the disk) hits both;
            # processes take long to spawn, so they run one long round each.
            rounds = ROUNDS if mode == "threads" else 1
            ours_rates, base_rates = [], []
            for round_ in range(rounds):
                progress(f"append: {label}, commands, round {round_ + 1} of {rounds}")
                args = [(database_url, shared)] * writers
                ours_rates.append(concurrency.rate(command_job, args, seconds / rounds, mode))
                size = baseline.mean_state_bytes(database_url)
                progress(f"append: {label}, INSERT+COMMIT ({size} B rows), round {round_ + 1}")
                base_rates.append(
                    baseline.insert_rate(database_url, writers, seconds / rounds, size, mode)
                )
            ours, base = sum(ours_rates) / rounds, sum(base_rates) / rounds
            r = ratio(ours, base)
            target = TARGETS[writers]
            figures.append(
                Figure(
                    "append",
                    f"commands/s, {label}",
                    ours,
                    "commands/s",
                    "INSERT+COMMIT/s, same writers",
                    base,
                    r,
                    f"ratio >= {target}",
                    r is not None and r >= target,
                )
            )
    for history in _shared.values():
        history.close()
    _shared.clear()
    return figures
