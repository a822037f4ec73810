"""`link-mentions`: timeline events whose title or description names an element or a location
they do not link.

A name counts when it appears as a whole word sequence, in any letter case ("Ann" is not in
"Annals"); where names overlap, the longest one at a place wins ("Karsa Keep" over "Karsa").
Two elements (or two locations) that share a name are never guessed between: that becomes a
flag. A named location is proposed only for an event that has none; when several are named,
the most specific one is taken if the others contain it, else it is flagged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from suggestions.context import BranchContext

Entity = dict[str, Any]
Finding = dict[str, Any]


@dataclass(frozen=True)
class Named:
    collection: str  # "elements" or "locations"
    id: str
    name: str


class NameIndex:
    """Finds the names of elements and locations in free text."""

    def __init__(self, named: Iterable[Named]) -> None:
        self.by_key: dict[str, list[Named]] = {}
        for item in named:
            if len(re.findall(r"\w", item.name)) >= 2:
                self.by_key.setdefault(_key(item.name), []).append(item)
        longest_first = sorted(self.by_key, key=lambda key: (-len(key), key))
        names = [self.by_key[key][0].name for key in longest_first]
        alternatives = "|".join(
            r"\s+".join(re.escape(part) for part in name.split()) for name in names
        )
        self.pattern = (
            re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if names else None
        )

    def find(self, text: str) -> list[list[Named]]:
        """For each distinct name in `text`, the entities that bear it, in order of mention."""
        if self.pattern is None or not text:
            return []
        seen: dict[str, list[Named]] = {}
        for match in self.pattern.finditer(text):
            key = _key(match.group(0))
            if key in self.by_key and key not in seen:
                seen[key] = self.by_key[key]
        return list(seen.values())


def link_mentions(context: BranchContext) -> tuple[list[Finding], list[Finding]]:
    """Edits linking what each timeline event names, and flags for what cannot be decided."""
    index = NameIndex(_candidates(context))
    parents = {loc["id"]: loc.get("parent_id") for loc in context.locations}
    order = {e["id"]: n for n, e in enumerate(context.elements)}
    edits: list[Finding] = []
    flags: list[Finding] = []
    for event in context.timeline_events:
        text = f"{event.get('title') or ''}\n{event.get('description') or ''}"
        linked = set(event.get("element_ids") or [])
        elements: list[Named] = []
        locations: list[Named] = []
        for bearers in index.find(text):
            for collection, group in (
                ("elements", [b for b in bearers if b.collection == "elements"]),
                ("locations", [b for b in bearers if b.collection == "locations"]),
            ):
                if not group:
                    continue
                if len(group) > 1:
                    if collection == "elements" and linked & {b.id for b in group}:
                        continue  # one of the namesakes is already linked: nothing to ask
                    if collection == "locations" and event.get("location_id"):
                        continue
                    flags.append(_ambiguous(event, group))
                    continue
                (elements if collection == "elements" else locations).append(group[0])
        body: dict[str, Any] = {}
        new = sorted({e.id for e in elements} - linked, key=lambda i: order.get(i, 0))
        if new:
            body["element_ids"] = [*(event.get("element_ids") or []), *new]
        if locations and not event.get("location_id"):
            chosen = _most_specific([loc.id for loc in locations], parents)
            if chosen is not None:
                body["location_id"] = chosen
            else:
                flags.append(_ambiguous(event, locations))
        if body:
            edits.append(
                {
                    "command": "update",
                    "target": f"timeline-events/{event['id']}",
                    "body": body,
                    "expected_version": event["version"],
                }
            )
    return edits, flags


def _candidates(context: BranchContext) -> list[Named]:
    """The names to look for: the target's only, when the request names an element or place."""
    target = context.target
    elements = context.elements
    locations = context.locations
    if target is not None and target.segment == "elements":
        elements, locations = [e for e in elements if e["id"] == target.id], []
    elif target is not None and target.segment == "locations":
        elements, locations = [], [loc for loc in locations if loc["id"] == target.id]
    return [Named("elements", e["id"], e["name"]) for e in elements] + [
        Named("locations", loc["id"], loc["name"]) for loc in locations
    ]


def _most_specific(ids: list[str], parents: dict[str, Any]) -> str | None:
    """The one location that lies inside all the others, if there is one."""
    for candidate in ids:
        ancestors = _ancestors(candidate, parents)
        if all(other == candidate or other in ancestors for other in ids):
            return candidate
    return None


def _ancestors(location_id: str, parents: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    current = parents.get(location_id)
    while current is not None and current not in found:
        found.add(current)
        current = parents.get(current)
    return found


def _ambiguous(event: Entity, bearers: list[Named]) -> Finding:
    names = ", ".join(f"{b.name!r} ({b.collection}/{b.id})" for b in bearers)
    return {
        "kind": "ambiguous-mention",
        "entity": f"timeline-events/{event['id']}",
        "message": f"{event.get('title')!r} names {names}; link the right one by hand",
    }


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()
