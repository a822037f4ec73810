"""What the events of an imported world may say, beyond their types.

A valid chain shows that an archive was not changed by accident, not that an instance of
this service recorded it: anyone can compute a chain. So the importer also checks what the
projector and the write model rely on when they read the events back:

- the world stream replays into a World aggregate: names, descriptions and calendars pass
  the write side's own checks; member user ids are UUIDs with a known role, added only while
  not a member and changed or removed only while one; each branch is registered once, under
  the stream id its name derives, forked (if at all) from a branch registered before it;
- on a branch, entity ids are UUIDs; an entity is added only while absent and changed or
  removed only while present (a fork starts with what its parent held at the fork version);
  added fields and changes name only the fields the write side records for the collection,
  each value of the shape the write side checks.

Not checked: references between entities (a parent, timeline, location or linked element
that does not exist reads as a dangling id and breaks nothing), dates against the calendar
(a later calendar may legitimately not fit earlier dates) and at-least-one-owner (the
importer becomes an owner anyway).

A branch's live entity ids are kept as one integer each (about 90 bytes): memory grows with
the entities one branch holds, not with its history or the size of what they say.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from commands import branch_events as ev
from commands.archive_format import CANONICAL_UUID, canonical_uuid
from commands.dates import check_calendar
from commands.errors import InvalidCommand
from commands.validation import check_metadata, check_name, check_tags, check_text
from commands.world import ROLES, World, branch_id

COLLECTION_INDEX = {"locations": 0, "elements": 1, "timelines": 2, "timeline_events": 3}
MAX_LINKS = 1000

Rule = Callable[[Any, str], None]


def _name(value: Any, field: str) -> None:
    check_name(value, field)


def _text(value: Any, field: str) -> None:
    check_text(value, field)


def _metadata(value: Any, field: str) -> None:
    try:
        check_metadata(value, field)
    except (TypeError, ValueError):
        raise InvalidCommand.field(field, "must hold JSON values only") from None


def _tags(value: Any, field: str) -> None:
    check_tags(value, field)


def _uuid(value: Any, field: str) -> None:
    if canonical_uuid(value) is None:
        raise InvalidCommand.field(field, "must be a UUID")


def _optional_uuid(value: Any, field: str) -> None:
    if value is not None:
        _uuid(value, field)


def _uuid_list(value: Any, field: str) -> None:
    if not isinstance(value, list) or len(value) > MAX_LINKS:
        raise InvalidCommand.field(field, f"must be a list of at most {MAX_LINKS} UUIDs")
    for item in value:
        _uuid(item, field)


def _date(value: Any, field: str) -> None:
    parts_ok = isinstance(value, dict) and set(value) <= {"year", "month", "day"}
    if not parts_ok or "year" not in value:
        raise InvalidCommand.field(field, "must be a date {year, month?, day?}")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value.values()):
        raise InvalidCommand.field(field, "date parts must be integers")


def _optional_date(value: Any, field: str) -> None:
    if value is not None:
        _date(value, field)


ADDED_FIELDS: dict[str, dict[str, Rule]] = {
    "locations": {
        "name": _name,
        "kind": _name,
        "description": _text,
        "parent_id": _optional_uuid,
        "metadata": _metadata,
    },
    "elements": {
        "kind": _name,
        "name": _name,
        "summary": _text,
        "tags": _tags,
        "metadata": _metadata,
    },
    "timelines": {"name": _name, "description": _text},
    "timeline_events": {
        "timeline_id": _uuid,
        "title": _name,
        "description": _text,
        "start": _date,
        "end": _optional_date,
        "location_id": _optional_uuid,
        "element_ids": _uuid_list,
        "metadata": _metadata,
    },
}
ADDED_NAMES = {collection: frozenset(rules) for collection, rules in ADDED_FIELDS.items()}
# What an `...Updated` event may change: moves, reschedules and links have events of their own.
UPDATED_FIELDS: dict[str, frozenset[str]] = {
    "locations": frozenset({"name", "kind", "description", "metadata"}),
    "elements": frozenset({"kind", "name", "summary", "tags", "metadata"}),
    "timelines": frozenset({"name", "description"}),
    "timeline_events": frozenset(
        {"timeline_id", "title", "description", "location_id", "metadata"}
    ),
}


def _check_fields(
    values: dict[str, Any],
    allowed: set[str] | frozenset[str],
    where: str,
    collection: str,
    exact: bool,
) -> None:
    if values.keys() != allowed:
        unknown = values.keys() - allowed
        if unknown:
            raise InvalidCommand.field(where, f"unknown fields: {', '.join(sorted(unknown))}")
        missing = allowed - values.keys()
        if exact and missing:
            raise InvalidCommand.field(where, f"lacks fields: {', '.join(sorted(missing))}")
    rules = ADDED_FIELDS[collection]
    for name, value in values.items():
        rules[name](value, _path(where, name))


@lru_cache(maxsize=256)
def _path(where: str, name: str) -> str:
    """`where.name`: the field a refusal names (a few dozen of them: each made once)."""
    return f"{where}.{name}"


def _entity_key(collection: str, entity_id: Any) -> int:
    """The collection and the entity's UUID as one integer; the id must be a canonical UUID
    (so its text is the UUID's own, and its hex digits are the UUID's integer)."""
    if not isinstance(entity_id, str) or not CANONICAL_UUID.fullmatch(entity_id):
        raise InvalidCommand.field("entity_id", "must be a UUID")
    return COLLECTION_INDEX[collection] << 128 | int(entity_id.replace("-", ""), 16)


class BranchContent:
    """The entity ids live on one branch as its events stream past."""

    def __init__(self, inherited: frozenset[int] = frozenset()) -> None:
        self._live = set(inherited)

    def snapshot(self) -> frozenset[int]:
        return frozenset(self._live)

    def check(self, event: Any) -> None:
        if not isinstance(event, ev.ContentEvent):
            return  # starts, merges and reverts change no entity
        collection, entity = event.collection, event.entity_id
        key = _entity_key(collection, entity)
        if isinstance(event, ev.EntityAdded):
            if key in self._live:
                raise InvalidCommand.field(
                    "entity_id",
                    f"{_singular(collection)} {entity} is added while it already exists",
                )
            _check_fields(event.fields, ADDED_NAMES[collection], "fields", collection, True)
            self._live.add(key)
            return
        if key not in self._live:
            raise InvalidCommand.field(
                "entity_id", f"{_singular(collection)} {entity} does not exist on this branch here"
            )
        if isinstance(event, ev.EntityRemoved):
            self._live.remove(key)
        elif isinstance(event, ev.EntityUpdated):
            _check_fields(event.changes, UPDATED_FIELDS[collection], "changes", collection, False)
        elif isinstance(event, ev.LocationMoved):
            _optional_uuid(event.parent_id, "parent_id")
        elif isinstance(event, ev.TimelineEventRescheduled):
            _date(event.start, "start")
            _optional_date(event.end, "end")
        elif isinstance(event, (ev.ElementsLinked, ev.ElementsUnlinked)):
            _uuid_list(event.element_ids, "element_ids")


def _singular(collection: str) -> str:
    return collection.removesuffix("s").replace("_", " ")


class WorldReplay:
    """The world stream, replayed into a World aggregate after each event is checked."""

    def __init__(self) -> None:
        self.world: World | None = None

    @property
    def branches(self) -> dict[str, dict[str, Any]]:
        return self.world.branches if self.world is not None else {}

    def check(self, event: Any) -> None:
        if isinstance(event, World.WorldCreated):
            check_name(event.name)
            check_text(event.description, "description")
            check_calendar(event.calendar)
            _uuid(event.owner_id, "owner_id")
        elif isinstance(event, World.WorldRenamed):
            check_name(event.name)
        elif isinstance(event, World.WorldDescribed):
            check_text(event.description, "description")
        elif isinstance(event, World.CalendarDefined):
            check_calendar(event.calendar)
        elif isinstance(event, (World.MemberAdded, World.MemberRoleChanged, World.MemberRemoved)):
            self._check_member(event)
        elif isinstance(event, World.BranchCreated):
            self._check_branch(event)
        self.world = event.mutate(self.world)

    def _members(self) -> dict[str, str]:
        assert self.world is not None
        return self.world.members

    def _check_member(self, event: Any) -> None:
        _uuid(event.user_id, "user_id")
        known = event.user_id in self._members()
        if isinstance(event, World.MemberAdded) and known:
            raise InvalidCommand.field("user_id", f"{event.user_id} is added twice")
        if not isinstance(event, World.MemberAdded) and not known:
            raise InvalidCommand.field("user_id", f"{event.user_id} is not a member")
        if not isinstance(event, World.MemberRemoved) and event.role not in ROLES:
            raise InvalidCommand.field("role", f"must be one of {', '.join(ROLES)}")

    def _check_branch(self, event: Any) -> None:
        assert self.world is not None
        check_name(event.name)
        if event.name in self.world.branches:
            raise InvalidCommand.field("name", f"branch {event.name!r} is registered twice")
        if event.branch_id != str(branch_id(self.world.id, event.name)):
            raise InvalidCommand.field("branch_id", "must be derived from the world and name")
        forked = event.forked_from
        if forked is None:
            return
        version = forked.get("version")
        if (
            set(forked) != {"branch", "version"}
            or forked["branch"] not in self.world.branches
            or not isinstance(version, int)
            or isinstance(version, bool)
            or version < 0
        ):
            raise InvalidCommand.field(
                "forked_from", "must name a branch registered before it and a version >= 0"
            )
