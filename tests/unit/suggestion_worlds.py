"""Hand-built branch contexts for the suggestion providers' unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import uuid4

from commands.dates import DEFAULT_CALENDAR, Calendar
from suggestions.context import BranchContext, Target

Entity = dict[str, Any]


def element(name: str, **metadata: Any) -> Entity:
    return {
        "id": str(uuid4()),
        "kind": "character",
        "name": name,
        "summary": f"secret summary of {name}",
        "tags": ["secret-tag"],
        "metadata": metadata,
        "version": 1,
    }


def location(name: str, parent: Entity | None = None) -> Entity:
    return {
        "id": str(uuid4()),
        "name": name,
        "kind": "place",
        "description": None,
        "parent_id": parent["id"] if parent else None,
        "metadata": {},
        "version": 1,
    }


def timeline(name: str = "Main", **metadata: Any) -> Entity:
    return {"id": str(uuid4()), "name": name, "description": None, "metadata": metadata}


def event(
    title: str,
    description: str | None = None,
    *,
    on: Entity | None = None,
    start: dict[str, int] | None = None,
    end: dict[str, int] | None = None,
    elements: Sequence[Entity] = (),
    at: Entity | None = None,
    version: int = 7,
) -> Entity:
    return {
        "id": str(uuid4()),
        "timeline_id": on["id"] if on else str(uuid4()),
        "title": title,
        "description": description,
        "start": start or {"year": 100},
        "end": end,
        "location_id": at["id"] if at else None,
        "element_ids": [e["id"] for e in elements],
        "metadata": {},
        "version": version,
    }


def context(
    *,
    elements: Sequence[Entity] = (),
    locations: Sequence[Entity] = (),
    timelines: Sequence[Entity] = (),
    events: Sequence[Entity] = (),
    calendar: dict[str, Any] | None = None,
    target: str | None = None,
) -> BranchContext:
    return BranchContext(
        calendar=Calendar.from_dict(calendar or DEFAULT_CALENDAR),
        elements=list(elements),
        locations=list(locations),
        timelines=list(timelines),
        timeline_events=list(events),
        target=Target.parse(target) if target else None,
    )
