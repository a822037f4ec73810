"""After the storm: what the event store, the hash chains and the read tables say.

`exactly_once` counts, per tag a writer chose, the events that carry it; `broken_chains`
recomputes every chain as `pearl audit verify` does; `read_model_drift` compares the read
tables with a fresh rebuild of them, row for row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any
from uuid import UUID

from sqlalchemy import create_engine

from commands.application import WorldHistory
from commands.branch_events import ElementAdded, ElementUpdated
from commands.verification import verify_branch, verify_world
from commands.world import World
from projections.runner import ProjectionRunner
from tests.integration.readside import differences, dump_read_tables
from tests.resilience.load import Op

PAGE = 1000


def stored_events(history: WorldHistory) -> Iterator[Any]:
    """Every event of the store in position order, decoded."""
    position = 0
    while True:
        page = history.recorder.select_notifications(
            start=position, limit=PAGE, inclusive_of_start=False
        )
        for notification in page:
            yield history.mapper.to_domain_event(notification)
        if len(page) < PAGE:
            return
        position = page[-1].id


def tag_counts(history: WorldHistory) -> Counter[str]:
    """How many events carry each writer's tag (a created name, a patched metadata key)."""
    counts: Counter[str] = Counter()
    for event in stored_events(history):
        if isinstance(event, ElementAdded):
            counts[str(event.fields.get("name"))] += 1
        elif isinstance(event, ElementUpdated):
            counts.update(str(key) for key in (event.changes.get("metadata") or {}))
    return counts


def exactly_once(history: WorldHistory, ops: Iterable[Op]) -> dict[str, int]:
    """`lost`: acknowledged but not recorded; `duplicated`: recorded more than once;
    `unacknowledged recorded`: never acknowledged, recorded once (allowed)."""
    counts = tag_counts(history)
    result = Counter(lost=0, duplicated=0, recorded=0)
    for op in ops:
        found = counts.get(op.tag, 0)
        result["recorded"] += found == 1
        result["duplicated"] += found > 1
        result["lost"] += op.acknowledged and found == 0
        result["unacknowledged recorded"] += not op.acknowledged and found == 1
    return dict(result)


def broken_chains(history: WorldHistory, world_ids: Iterable[str]) -> tuple[int, int]:
    """(chains checked, chains that do not verify) of each world and each of its branches."""
    checked = broken = 0
    for world_id in world_ids:
        world: World = history.world(UUID(world_id))
        verdicts = [verify_world(history, world.id)]
        verdicts += [verify_branch(history, world, name) for name in world.branches]
        checked += len(verdicts)
        broken += sum(not verdict.valid for verdict in verdicts)
    return checked, broken


def read_model_drift(database_url: str) -> tuple[int, dict[str, Any]]:
    """Rebuild the read tables and compare: (tables that differ, a sample of the difference).

    Call once the projector has caught up and nothing writes any more.
    """
    engine = create_engine(database_url)
    history = WorldHistory.on_database(database_url)
    try:
        live = dump_read_tables(engine)
        ProjectionRunner(engine, history).rebuild()
        rebuilt = dump_read_tables(engine)
    finally:
        history.close()
        engine.dispose()
    diff = differences(live, rebuilt)
    changes = len(live.get("rm_changes", []))
    if changes != len(rebuilt.get("rm_changes", [])):
        diff.setdefault("rm_changes", {})
    return len(diff), diff


def audit(database_url: str, ops: list[Op], world_ids: list[str]) -> dict[str, Any]:
    """Everything above in one report: counts, plus `broken` = bad chains + drifted tables."""
    history = WorldHistory.on_database(database_url)
    try:
        once = exactly_once(history, ops)
        checked, bad_chains = broken_chains(history, world_ids)
    finally:
        history.close()
    drift, sample = read_model_drift(database_url)
    return {
        **once,
        "chains checked": checked,
        "broken chains": bad_chains,
        "drifted tables": drift,
        "drift sample": sample,
    }
