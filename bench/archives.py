"""Big worlds as NDJSON archives, built with the project's own aggregates and chain.

Events come from the `World` and `Branch` aggregates (so hashes, provenance and state are
exactly what the write side records), are stored with a `WorldHistory` mapper and written
with `commands.archive_format`: an archive any importer verifies. Nothing touches a
database, so a million events take a couple of minutes, not hours of HTTP.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from bench.report import progress
from commands.application import WorldHistory
from commands.archive_export import plain_state
from commands.archive_format import Header, StreamEntry, event_line, header_line
from commands.branch import Branch
from commands.provenance import Provenance, recorded_by
from commands.world import DEFAULT_BRANCH, World

WORDS = [
    "amber",
    "basalt",
    "cinder",
    "dusk",
    "ember",
    "fjord",
    "gale",
    "harbor",
    "iris",
    "juniper",
    "kestrel",
    "lagoon",
    "meadow",
    "nimbus",
    "onyx",
    "pylon",
    "quarry",
    "rune",
    "saffron",
    "thistle",
    "umber",
    "vale",
    "willow",
    "xenon",
    "yarrow",
    "zephyr",
]
FACTIONS = 50
YEARS = 2000
CHUNK = 2000


@dataclass(frozen=True)
class Shape:
    """What a generated world holds; updates change element metadata, round robin."""

    elements: int
    timeline_events: int
    updates: int

    @property
    def events(self) -> int:
        # world: created, branch registered; branch: started, one timeline, the content
        return 2 + 2 + self.elements + self.timeline_events + self.updates

    @classmethod
    def of_events(cls, events: int, entity_share: float = 0.1) -> Shape:
        """About `events` events: `entity_share` of them elements, as many timeline events."""
        entities = int(events * entity_share)
        return cls(entities, entities, max(0, events - 4 - 2 * entities))


@dataclass(frozen=True)
class Archive:
    path: Path
    world_id: UUID
    events: int
    timeline_id: str
    shape: Shape


def element_fields(i: int) -> dict[str, Any]:
    word = WORDS[i % len(WORDS)]
    return {
        "kind": "character",
        "name": f"Element {i} of the {word}",
        "summary": f"A {word} figure, number {i}",
        "tags": [word],
        "metadata": {"faction": f"f{i % FACTIONS}", "rank": i % 7},
    }


def write_world(path: Path, shape: Shape, name: str = "Bench world") -> Archive:
    """Write an archive of a new world with `shape` to `path`."""
    mapper = WorldHistory().mapper  # the same transcoder as the importing application
    owner = Provenance(actor=str(uuid4()), correlation_id="bench")
    body = path.with_suffix(".body")
    world_id = uuid4()
    timeline_id = str(uuid4())
    counts = {"world": 0, "branch": 0}
    with body.open("wb") as out, recorded_by(owner):
        world = World.create(world_id, name=name, owner_id=owner.actor)
        main_id = world.register_branch(DEFAULT_BRANCH)
        main = Branch.start(main_id, world_id=world_id, name=DEFAULT_BRANCH)
        calendar = world.calendar_rules

        def flush(aggregate: Any, kind: str) -> None:
            events = aggregate.collect_events()
            counts[kind] += len(events)
            out.write(_lines(events, mapper))

        world_lines = list(world.collect_events())
        main.add_timeline(timeline_id, {"name": "The long age"})
        element_ids = [str(uuid4()) for _ in range(shape.elements)]
        steps = 0
        for i, element_id in enumerate(element_ids):
            main.add_element(element_id, element_fields(i))
            steps += 1
            if steps % CHUNK == 0:
                flush(main, "branch")
        for i in range(shape.timeline_events):
            word = WORDS[i % len(WORDS)]
            fields = {
                "timeline_id": timeline_id,
                "title": f"Event {i}: the {word} accord",
                "start": {"year": 1 + i % YEARS},
                "metadata": {"faction": f"f{i % FACTIONS}"},
            }
            main.add_timeline_event(str(uuid4()), fields, calendar)
            steps += 1
            if steps % CHUNK == 0:
                flush(main, "branch")
        for j in range(shape.updates):
            target = element_ids[j % len(element_ids)]
            main.update_element(target, {"metadata": {"rank": 7 + j}}, None)
            steps += 1
            if steps % CHUNK == 0:
                flush(main, "branch")
            if steps % 100_000 == 0:
                progress(f"  generated {steps:,} of {shape.events:,} events")
        flush(main, "branch")
    world_events = _lines(world_lines, mapper)
    header = Header(
        world_id=world_id,
        streams=(
            StreamEntry(world_id, "world", None, len(world_lines), world.last_hash),
            StreamEntry(main_id, "branch", DEFAULT_BRANCH, counts["branch"], main.last_hash),
        ),
    )
    with path.open("wb") as final:
        final.write(header_line(header))
        final.write(world_events)
        with body.open("rb") as rest:
            shutil.copyfileobj(rest, final, 1 << 20)
    body.unlink()
    total = len(world_lines) + counts["branch"]
    return Archive(path, world_id, total, timeline_id, shape)


def _lines(events: list[Any], mapper: Any) -> bytes:
    """Archive lines of freshly triggered events, as an export would write them."""
    lines = []
    for event in events:
        stored = mapper.to_stored_event(event)
        state = plain_state(mapper, stored.state)
        lines.append(
            event_line(stored.originator_id, stored.originator_version, stored.topic, state)
        )
    return b"".join(lines)
