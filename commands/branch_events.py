"""Events of a Branch stream: the branch's start and every change to its content.

Each content event names its `collection` and carries the `entity_id` it changes, so the
change log and projectors treat all four collections alike.
"""

from __future__ import annotations

from sys import intern
from typing import Any

from commands.chained import ChainedAggregate
from commands.merge_patch import apply_merge_patch

COLLECTIONS = ("locations", "elements", "timelines", "timeline_events")

# The fields of each collection's entities (beside `id` and `version`).
FIELDS: dict[str, tuple[str, ...]] = {
    "locations": ("name", "kind", "description", "parent_id", "metadata"),
    "elements": ("kind", "name", "summary", "tags", "metadata"),
    "timelines": ("name", "description"),
    "timeline_events": (
        "timeline_id",
        "title",
        "description",
        "start",
        "end",
        "location_id",
        "element_ids",
        "metadata",
    ),
}


class BranchStarted(ChainedAggregate.Created):
    """A world's first branch (`main`), starting at version 0."""

    world_id: str
    name: str

    def apply(self, aggregate: Any) -> None:
        aggregate.world_id = self.world_id
        aggregate.name = self.name
        aggregate.base_version = 0
        aggregate.forked_from = None
        aggregate.entities = {c: {} for c in COLLECTIONS}
        aggregate.merges = {}


class BranchForked(ChainedAggregate.Created):
    """A branch that starts as its parent stood at `at_version` (its chain links there)."""

    world_id: str
    name: str
    parent_branch_id: str
    parent_branch: str
    at_version: int
    parent_hash: str

    def apply(self, aggregate: Any) -> None:
        aggregate.world_id = self.world_id
        aggregate.name = self.name
        aggregate.base_version = self.at_version
        aggregate.forked_from = {"branch": self.parent_branch, "version": self.at_version}
        aggregate.entities = {c: {} for c in COLLECTIONS}  # the loader fills in the parent's
        aggregate.merges = {}


class ContentEvent(ChainedAggregate.Event):
    """A change to one entity of one collection."""

    collection = ""
    entity_id: str

    def mutate(self, aggregate: Any) -> Any:
        journal = aggregate.journal
        if journal is not None:  # keep the entity as it was, to undo (`Branch.undone_on_error`)
            entities = aggregate.entities[self.collection]
            before = entities.get(self.entity_id)
            journal.append((entities, self.entity_id, None if before is None else dict(before)))
        return super().mutate(aggregate)

    def branch_version(self, aggregate: Any) -> int:
        return int(aggregate.base_version + self.originator_version - 1)

    def entity(self, aggregate: Any) -> dict[str, Any]:
        entity: dict[str, Any] = aggregate.entities[self.collection][self.entity_id]
        entity["version"] = self.branch_version(aggregate)
        return entity


def interned(value: Any) -> Any:
    """`value` with the keys of its objects interned: a branch holds the same few field and
    metadata names in every entity, once each instead of once per entity (decoded events
    bring their own copies; this takes a quarter off a cached branch's memory). Only for
    aggregates that are `keeps` (kept in memory: branches), not for a projector's rows."""
    if type(value) is not dict:
        return value
    return {intern(key): interned(item) for key, item in value.items()}


class EntityAdded(ContentEvent):
    fields: dict[str, Any]

    def apply(self, aggregate: Any) -> None:
        fields = interned(self.fields) if getattr(aggregate, "keeps", False) else self.fields
        aggregate.entities[self.collection][self.entity_id] = {
            **fields,
            "id": self.entity_id,
            "version": self.branch_version(aggregate),
        }


class EntityUpdated(ContentEvent):
    """Changed fields only; `metadata`, when present, is an RFC 7386 merge patch."""

    changes: dict[str, Any]

    def apply(self, aggregate: Any) -> None:
        entity = self.entity(aggregate)
        for key, value in self.changes.items():
            if key == "metadata":
                patched = apply_merge_patch(entity.get("metadata", {}), value)
                entity["metadata"] = (
                    interned(patched) if getattr(aggregate, "keeps", False) else patched
                )
            else:
                entity[key] = value


class EntityRemoved(ContentEvent):
    def apply(self, aggregate: Any) -> None:
        del aggregate.entities[self.collection][self.entity_id]


class LocationAdded(EntityAdded):
    collection = "locations"


class LocationUpdated(EntityUpdated):
    collection = "locations"


class LocationMoved(ContentEvent):
    collection = "locations"
    parent_id: str | None

    def apply(self, aggregate: Any) -> None:
        self.entity(aggregate)["parent_id"] = self.parent_id


class LocationRemoved(EntityRemoved):
    collection = "locations"


class ElementAdded(EntityAdded):
    collection = "elements"


class ElementUpdated(EntityUpdated):
    collection = "elements"


class ElementRemoved(EntityRemoved):
    collection = "elements"


class TimelineAdded(EntityAdded):
    collection = "timelines"


class TimelineUpdated(EntityUpdated):
    collection = "timelines"


class TimelineRemoved(EntityRemoved):
    collection = "timelines"


class TimelineEventAdded(EntityAdded):
    collection = "timeline_events"


class TimelineEventUpdated(EntityUpdated):
    collection = "timeline_events"


class TimelineEventRescheduled(ContentEvent):
    collection = "timeline_events"
    start: dict[str, int]
    end: dict[str, int] | None

    def apply(self, aggregate: Any) -> None:
        entity = self.entity(aggregate)
        entity["start"] = self.start
        entity["end"] = self.end


class ElementsLinked(ContentEvent):
    collection = "timeline_events"
    element_ids: list[str]

    def apply(self, aggregate: Any) -> None:
        entity = self.entity(aggregate)
        entity["element_ids"] = [*entity["element_ids"], *self.element_ids]


class ElementsUnlinked(ContentEvent):
    collection = "timeline_events"
    element_ids: list[str]

    def apply(self, aggregate: Any) -> None:
        entity = self.entity(aggregate)
        gone = set(self.element_ids)
        entity["element_ids"] = [e for e in entity["element_ids"] if e not in gone]


class TimelineEventRemoved(EntityRemoved):
    collection = "timeline_events"


class BranchMerged(ChainedAggregate.Event):
    """Marks that `source` up to `source_version` was merged in (the next merge's ancestor)."""

    source_branch: str
    source_version: int

    def apply(self, aggregate: Any) -> None:
        own_version = aggregate.base_version + self.originator_version - 1
        aggregate.merges = {
            **aggregate.merges,
            self.source_branch: [self.source_version, own_version],
        }


class BranchReverted(ChainedAggregate.Event):
    """Marks that the events before it brought the branch back to its state at `to_version`."""

    to_version: int

    def apply(self, aggregate: Any) -> None:
        pass
