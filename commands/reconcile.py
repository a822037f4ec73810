"""Bring a branch's content to a desired state through its ordinary commands.

Merge and revert both end here: they say what each entity should become (its fields, or
None for 'gone'), and this module emits the explicit events in an order that every
invariant accepts: parents before children, references before what refers to them,
removals last and deepest first. Any invariant the desired state breaks is refused by the
same checks as a human command, and the caller saves nothing.
"""

from __future__ import annotations

from typing import Any

from commands.branch import Branch, Entity
from commands.branch_events import COLLECTIONS, FIELDS
from commands.dates import Calendar
from commands.merge_patch import merge_patch_between

Desired = dict[str, dict[str, Entity | None]]  # collection -> id -> fields (None: removed)


def content_of(entity: Entity | None) -> Entity | None:
    """An entity's fields without its id and version."""
    if entity is None:
        return None
    return {k: v for k, v in entity.items() if k not in ("id", "version")}


def reconcile(branch: Branch, desired: Desired, calendar: Calendar) -> int:
    """Emit the events that make `branch` match `desired`; return how many it emitted."""
    before = len(branch.pending_events)
    want = {c: desired.get(c, {}) for c in COLLECTIONS}
    have = branch.entities

    def adds(collection: str) -> list[str]:
        return [
            i for i, f in want[collection].items() if f is not None and i not in have[collection]
        ]

    def updates(collection: str) -> list[str]:
        return [
            i
            for i, f in want[collection].items()
            if f is not None and i in have[collection] and content_of(have[collection][i]) != f
        ]

    def removals(collection: str) -> list[str]:
        return [i for i, f in want[collection].items() if f is None and i in have[collection]]

    # Locations: add parents first, then re-parent through the root (never a cycle on the way).
    for location_id in _parents_first(adds("locations"), want["locations"]):
        fields = dict(want["locations"][location_id] or {})
        final_parent = fields.get("parent_id")
        if final_parent is not None and final_parent not in have["locations"]:
            fields["parent_id"] = None  # its parent comes later; moved below
        branch.add_location(location_id, fields)
    moving = [
        i
        for i, f in want["locations"].items()
        if f is not None
        and i in have["locations"]
        and have["locations"][i]["parent_id"] != f["parent_id"]
    ]
    for location_id in moving:
        if have["locations"][location_id]["parent_id"] is not None:
            branch.update_location(location_id, {"parent_id": None}, None)
    for location_id in _parents_first(list(want["locations"]), want["locations"]):
        wanted = want["locations"][location_id]
        if (
            wanted is not None
            and have["locations"][location_id]["parent_id"] != wanted["parent_id"]
        ):
            branch.update_location(location_id, {"parent_id": wanted["parent_id"]}, None)
    for collection in ("locations", "timelines", "elements"):
        for entity_id in updates(collection):
            _update(branch, collection, entity_id, want[collection][entity_id] or {}, calendar)
        if collection != "locations":
            for entity_id in adds(collection):
                getattr(branch, f"add_{collection[:-1]}")(entity_id, want[collection][entity_id])
    for entity_id in adds("timeline_events"):
        branch.add_timeline_event(entity_id, want["timeline_events"][entity_id] or {}, calendar)
    for entity_id in updates("timeline_events"):
        _update(
            branch, "timeline_events", entity_id, want["timeline_events"][entity_id] or {}, calendar
        )
    for entity_id in removals("timeline_events"):
        branch.remove_timeline_event(entity_id, None)
    for entity_id in removals("elements"):
        branch.remove_element(entity_id, None, cascade=False)
    for entity_id in removals("timelines"):
        branch.remove_timeline(entity_id, None, cascade=False)
    for entity_id in reversed(_parents_first(removals("locations"), _current(have["locations"]))):
        branch.remove_location(entity_id, None, cascade=False)
    return len(branch.pending_events) - before


def _update(
    branch: Branch, collection: str, entity_id: str, target: Entity, calendar: Calendar
) -> None:
    current = content_of(branch.entities[collection][entity_id]) or {}
    changes: dict[str, Any] = {}
    for field in FIELDS[collection]:
        if field == "parent_id" or current.get(field) == target.get(field):
            continue
        if field == "metadata":
            changes["metadata"] = merge_patch_between(
                current.get("metadata", {}), target["metadata"]
            )
        else:
            changes[field] = target.get(field)
    if not changes:
        return
    if collection == "timeline_events":
        wanted = changes.get("element_ids")
        kept = [e for e in current.get("element_ids", []) if e in (wanted or [])]
        if wanted is not None and wanted != kept + [e for e in wanted if e not in kept]:
            # links only ever append: unlink first so the desired order comes back
            branch.update_timeline_event(entity_id, {"element_ids": []}, None, calendar)
        branch.update_timeline_event(entity_id, changes, None, calendar)
    else:
        getattr(branch, f"update_{collection[:-1]}")(entity_id, changes, None)


def _current(entities: dict[str, Entity]) -> dict[str, Entity | None]:
    return {i: content_of(e) for i, e in entities.items()}


def _parents_first(ids: list[str], tree: dict[str, Entity | None]) -> list[str]:
    """`ids` ordered so that a location comes after its parent (by depth in `tree`)."""

    def depth(location_id: str) -> int:
        seen = 0
        node = tree.get(location_id)
        while node is not None and node.get("parent_id") is not None and seen < len(tree):
            seen += 1
            node = tree.get(node["parent_id"])
        return seen

    return sorted(ids, key=depth)
