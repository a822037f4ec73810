"""The Branch aggregate: one stream per branch of a world, holding its content.

State is kept lean: one dict per entity, as the API returns it, so a command never pays
for more than reading and changing the entities it names.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

from commands import branch_events as ev
from commands.branch_checks import checked_changes, singular
from commands.chain import GENESIS_HASH
from commands.chained import ChainedAggregate
from commands.dates import Calendar
from commands.errors import Conflict, InvalidCommand, NotFound, StaleVersion
from commands.merge_patch import apply_merge_patch
from commands.validation import check_metadata, check_name, check_tags, check_text

Entity = dict[str, Any]
Journal = list[tuple[dict[str, Entity], str, Entity | None]]  # (collection, id, entity before)


class Branch(ChainedAggregate):
    """Locations, elements, timelines and timeline events of one line of a world's history."""

    if TYPE_CHECKING:  # state is set by events; annotations here would become event fields
        world_id: str
        name: str
        base_version: int
        forked_from: dict[str, Any] | None
        entities: dict[str, dict[str, Entity]]
        merges: dict[str, list[int]]  # source -> [its version merged, our version then]

    journal = None  # while `undone_on_error` runs: the entities as they were (a Journal)
    keeps = True  # held in memory between commands: entities' keys are interned

    @contextmanager
    def undone_on_error(self) -> Iterator[None]:
        """If the block raises, undo what it changed (the events it triggered, which changed
        the branch in place): the branch is as it was before, and can stay cached."""
        state = dict(vars(self))
        journal: Journal = []
        self.journal = journal
        try:
            yield
        except BaseException:
            for entities, entity_id, before in reversed(journal):
                if before is None:
                    entities.pop(entity_id, None)
                else:
                    entities[entity_id] = before
            vars(self).clear()
            vars(self).update(state, _pending_events=[])
            raise
        finally:
            vars(self).pop("journal", None)

    @classmethod
    def start(cls, branch_id: UUID, *, world_id: UUID, name: str) -> Branch:
        return cls._start(
            ev.BranchStarted,
            id=branch_id,
            prev_hash=GENESIS_HASH,
            world_id=str(world_id),
            name=name,
        )

    @classmethod
    def fork(
        cls,
        branch_id: UUID,
        *,
        world_id: UUID,
        name: str,
        parent_branch_id: UUID,
        parent_branch: str,
        at_version: int,
        parent_hash: str,
    ) -> Branch:
        """A branch starting as its parent stood at `at_version`; its chain links there."""
        return cls._start(
            ev.BranchForked,
            id=branch_id,
            prev_hash=parent_hash,
            world_id=str(world_id),
            name=name,
            parent_branch_id=str(parent_branch_id),
            parent_branch=parent_branch,
            at_version=at_version,
            parent_hash=parent_hash,
        )

    def record_merge(self, source: str, source_version: int) -> None:
        self.trigger_event(ev.BranchMerged, source_branch=source, source_version=source_version)

    def record_revert(self, to_version: int) -> None:
        self.trigger_event(ev.BranchReverted, to_version=to_version)

    def entity_count(self) -> int:
        """How many entities the branch holds (what its memory grows with)."""
        return sum(len(entities) for entities in self.entities.values())

    @property
    def head_version(self) -> int:
        """The branch version: `main` starts at 0; a fork at N starts at N."""
        return int(self.base_version + self.version - 1)

    # -- reading -------------------------------------------------------------------------

    def get(self, collection: str, entity_id: str, expected_version: int | None = None) -> Entity:
        entity = self.entities[collection].get(entity_id)
        if entity is None:
            raise NotFound(f"{singular(collection)} {entity_id} does not exist on this branch")
        if expected_version is not None and entity["version"] != expected_version:
            raise StaleVersion(expected_version, entity["version"])
        return entity

    def _require(self, collection: str, entity_id: Any, field: str) -> None:
        if not isinstance(entity_id, str) or entity_id not in self.entities[collection]:
            raise InvalidCommand.field(field, f"unknown {singular(collection)}: {entity_id}")

    def _check_new_id(self, collection: str, entity_id: str) -> None:
        if entity_id in self.entities[collection]:
            raise Conflict(f"{singular(collection)} {entity_id} already exists")

    def _update(self, event: type[ev.EntityUpdated], entity: Entity, changes: Entity) -> None:
        """Record only what differs; metadata is a merge patch checked on its result."""
        effective = {k: v for k, v in changes.items() if k != "metadata" and entity.get(k) != v}
        if "metadata" in changes:
            merged = apply_merge_patch(entity.get("metadata", {}), changes["metadata"])
            check_metadata(merged)
            if merged != entity.get("metadata"):
                effective["metadata"] = changes["metadata"]
        if effective:
            self.trigger_event(event, entity_id=entity["id"], changes=effective)

    # -- locations ----------------------------------------------------------------------

    def add_location(self, location_id: str, fields: Entity) -> Entity:
        self._check_new_id("locations", location_id)
        clean = {
            "name": check_name(fields.get("name")),
            "kind": check_name(fields.get("kind"), "kind"),
            "description": check_text(fields.get("description"), "description"),
            "parent_id": fields.get("parent_id"),
            "metadata": check_metadata(fields.get("metadata", {})),
        }
        if clean["parent_id"] is not None:
            self._require("locations", clean["parent_id"], "parent_id")
        self.trigger_event(ev.LocationAdded, entity_id=location_id, fields=clean)
        return self.entities["locations"][location_id]

    def update_location(self, location_id: str, changes: Entity, expected: int | None) -> Entity:
        entity = self.get("locations", location_id, expected)
        plain = checked_changes(changes, {"name", "kind", "description", "metadata"})
        moving = "parent_id" in changes and changes["parent_id"] != entity["parent_id"]
        if moving:
            self._check_move(location_id, changes["parent_id"])
        self._update(ev.LocationUpdated, entity, plain)
        if moving:
            self.trigger_event(
                ev.LocationMoved, entity_id=location_id, parent_id=changes["parent_id"]
            )
        return entity

    def _check_move(self, location_id: str, parent_id: str | None) -> None:
        if parent_id is not None:
            self._require("locations", parent_id, "parent_id")
            ancestor: str | None = parent_id
            while ancestor is not None:
                if ancestor == location_id:
                    raise InvalidCommand.field(
                        "parent_id", "would make the location its own ancestor (a cycle)"
                    )
                ancestor = self.entities["locations"][ancestor]["parent_id"]

    def remove_location(self, location_id: str, expected: int | None, cascade: bool) -> None:
        self.get("locations", location_id, expected)
        children = [
            i for i, e in self.entities["locations"].items() if e["parent_id"] == location_id
        ]
        events = [
            i
            for i, e in self.entities["timeline_events"].items()
            if e["location_id"] == location_id
        ]
        if (children or events) and not cascade:
            raise Conflict(
                f"location {location_id} is still referenced; remove with cascade=true to "
                "remove its sub-locations and clear it from timeline events",
                [{"collection": "locations", "id": i} for i in children]
                + [{"collection": "timeline_events", "id": i} for i in events],
            )
        for child in children:
            self.remove_location(child, None, cascade=True)
        for event_id in events:
            self.trigger_event(
                ev.TimelineEventUpdated, entity_id=event_id, changes={"location_id": None}
            )
        self.trigger_event(ev.LocationRemoved, entity_id=location_id)

    # -- elements -------------------------------------------------------------------------

    def add_element(self, element_id: str, fields: Entity) -> Entity:
        self._check_new_id("elements", element_id)
        clean = {
            "kind": check_name(fields.get("kind"), "kind"),
            "name": check_name(fields.get("name")),
            "summary": check_text(fields.get("summary"), "summary"),
            "tags": check_tags(fields.get("tags", [])),
            "metadata": check_metadata(fields.get("metadata", {})),
        }
        self.trigger_event(ev.ElementAdded, entity_id=element_id, fields=clean)
        return self.entities["elements"][element_id]

    def update_element(self, element_id: str, changes: Entity, expected: int | None) -> Entity:
        entity = self.get("elements", element_id, expected)
        plain = checked_changes(changes, {"kind", "name", "summary", "tags", "metadata"})
        self._update(ev.ElementUpdated, entity, plain)
        return entity

    def remove_element(self, element_id: str, expected: int | None, cascade: bool) -> None:
        self.get("elements", element_id, expected)
        linked = [
            i for i, e in self.entities["timeline_events"].items() if element_id in e["element_ids"]
        ]
        if linked and not cascade:
            raise Conflict(
                f"element {element_id} is linked from timeline events; remove with cascade=true "
                "to unlink it",
                [{"collection": "timeline_events", "id": i} for i in linked],
            )
        for event_id in linked:
            self.trigger_event(ev.ElementsUnlinked, entity_id=event_id, element_ids=[element_id])
        self.trigger_event(ev.ElementRemoved, entity_id=element_id)

    # -- timelines ------------------------------------------------------------------------

    def add_timeline(self, timeline_id: str, fields: Entity) -> Entity:
        self._check_new_id("timelines", timeline_id)
        clean = {
            "name": check_name(fields.get("name")),
            "description": check_text(fields.get("description"), "description"),
        }
        self.trigger_event(ev.TimelineAdded, entity_id=timeline_id, fields=clean)
        return self.entities["timelines"][timeline_id]

    def update_timeline(self, timeline_id: str, changes: Entity, expected: int | None) -> Entity:
        entity = self.get("timelines", timeline_id, expected)
        self._update(ev.TimelineUpdated, entity, checked_changes(changes, {"name", "description"}))
        return entity

    def remove_timeline(self, timeline_id: str, expected: int | None, cascade: bool) -> None:
        self.get("timelines", timeline_id, expected)
        events = [
            i
            for i, e in self.entities["timeline_events"].items()
            if e["timeline_id"] == timeline_id
        ]
        if events and not cascade:
            raise Conflict(
                f"timeline {timeline_id} still has events; remove with cascade=true to remove them",
                [{"collection": "timeline_events", "id": i} for i in events],
            )
        for event_id in events:
            self.trigger_event(ev.TimelineEventRemoved, entity_id=event_id)
        self.trigger_event(ev.TimelineRemoved, entity_id=timeline_id)

    # -- timeline events ------------------------------------------------------------------

    def add_timeline_event(self, event_id: str, fields: Entity, calendar: Calendar) -> Entity:
        self._check_new_id("timeline_events", event_id)
        self._require("timelines", fields.get("timeline_id"), "timeline_id")
        start = calendar.check(fields.get("start"), "start")
        end = None if fields.get("end") is None else calendar.check(fields["end"], "end")
        if end is not None and calendar.ends_before(end, start):
            raise InvalidCommand.field("end", "must not be before start")
        location_id = fields.get("location_id")
        if location_id is not None:
            self._require("locations", location_id, "location_id")
        element_ids = self._linked_elements(fields.get("element_ids", []))
        clean = {
            "timeline_id": fields["timeline_id"],
            "title": check_name(fields.get("title"), "title"),
            "description": check_text(fields.get("description"), "description"),
            "start": start,
            "end": end,
            "location_id": location_id,
            "element_ids": element_ids,
            "metadata": check_metadata(fields.get("metadata", {})),
        }
        self.trigger_event(ev.TimelineEventAdded, entity_id=event_id, fields=clean)
        return self.entities["timeline_events"][event_id]

    def update_timeline_event(
        self, event_id: str, changes: Entity, expected: int | None, calendar: Calendar
    ) -> Entity:
        entity = self.get("timeline_events", event_id, expected)
        if changes.get("timeline_id", entity["timeline_id"]) != entity["timeline_id"]:
            self._require("timelines", changes["timeline_id"], "timeline_id")
        if changes.get("location_id") is not None:
            self._require("locations", changes["location_id"], "location_id")
        plain = checked_changes(
            changes, {"timeline_id", "title", "description", "location_id", "metadata"}
        )
        if "start" in changes or "end" in changes:
            start = calendar.check(changes.get("start", entity["start"]), "start")
            raw_end = changes.get("end", entity["end"])
            end = None if raw_end is None else calendar.check(raw_end, "end")
            if end is not None and calendar.ends_before(end, start):
                raise InvalidCommand.field("end", "must not be before start")
        if "element_ids" in changes:
            wanted = self._linked_elements(changes["element_ids"])
        self._update(ev.TimelineEventUpdated, entity, plain)
        if ("start" in changes or "end" in changes) and (start, end) != (
            entity["start"],
            entity["end"],
        ):
            self.trigger_event(
                ev.TimelineEventRescheduled, entity_id=event_id, start=start, end=end
            )
        if "element_ids" in changes:
            current = entity["element_ids"]
            added = [e for e in wanted if e not in current]
            gone = [e for e in current if e not in wanted]
            if gone:
                self.trigger_event(ev.ElementsUnlinked, entity_id=event_id, element_ids=gone)
            if added:
                self.trigger_event(ev.ElementsLinked, entity_id=event_id, element_ids=added)
        return entity

    def remove_timeline_event(self, event_id: str, expected: int | None) -> None:
        self.get("timeline_events", event_id, expected)
        self.trigger_event(ev.TimelineEventRemoved, entity_id=event_id)

    def _linked_elements(self, element_ids: Any) -> list[str]:
        if not isinstance(element_ids, list) or len(element_ids) > 1000:
            raise InvalidCommand.field("element_ids", "must be a list of at most 1000 element ids")
        for element_id in element_ids:
            self._require("elements", element_id, "element_ids")
        return list(dict.fromkeys(element_ids))
