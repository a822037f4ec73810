"""What a provider may see of a branch: its content as the read tables hold it, narrowed.

The worker reads the branch through `queries/` (never the event store), capped per collection
so a huge world cannot blow up a task; what was cut is listed in `truncated`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from commands.dates import Calendar, parse_query_date
from commands.errors import InvalidCommand
from queries import worlds as world_queries
from queries.content import Filters, get_entity, list_entities

# URL segment of each collection -> its read-table name.
SEGMENTS = {
    "locations": "locations",
    "elements": "elements",
    "timelines": "timelines",
    "timeline-events": "timeline_events",
}
PAGE = 200
DEFAULT_LIMIT = 5000

Entity = dict[str, Any]


class ContextError(ValueError):
    """The request's parameters do not fit the branch (bad target, bad dates)."""


@dataclass(frozen=True)
class Target:
    """The entity a request is about: `segment/id`, e.g. `timelines/<uuid>`."""

    segment: str
    id: str

    @property
    def ref(self) -> str:
        return f"{self.segment}/{self.id}"

    @classmethod
    def parse(cls, text: Any) -> Target:
        segment, _, raw_id = str(text).partition("/")
        if segment not in SEGMENTS:
            known = ", ".join(SEGMENTS)
            raise ContextError(f"target must be collection/id with a collection of {known}")
        try:
            return cls(segment, str(UUID(raw_id)))
        except ValueError:
            raise ContextError(f"target {text!r} does not end in an entity id") from None


@dataclass(frozen=True)
class BranchContext:
    """A branch's content, oldest first (timeline events in in-world order)."""

    calendar: Calendar
    elements: list[Entity] = field(default_factory=list)
    locations: list[Entity] = field(default_factory=list)
    timelines: list[Entity] = field(default_factory=list)
    timeline_events: list[Entity] = field(default_factory=list)
    target: Target | None = None
    target_entity: Entity | None = None
    truncated: tuple[str, ...] = ()


def read_context(
    conn: Connection,
    world_id: UUID,
    branch: str,
    params: dict[str, Any],
    calendar: Calendar,
    *,
    limit: int = DEFAULT_LIMIT,
) -> BranchContext:
    """The branch's current content narrowed by the request's `target`, `from` and `to`.

    A timeline or timeline-event target narrows the timeline events; `from`/`to` keep the
    events whose span overlaps that in-world range.
    """
    found = world_queries.branch(conn, world_id, branch)
    if found is None:
        raise ContextError(f"branch {branch!r} does not exist in this world")
    branch_id = UUID(found["branch_id"])
    target = Target.parse(params["target"]) if params.get("target") else None
    target_entity = None
    if target is not None:
        target_entity = get_entity(conn, branch_id, SEGMENTS[target.segment], UUID(target.id), None)
        if target_entity is None:
            raise ContextError(f"target {target.ref} does not exist on this branch")
    truncated: list[str] = []

    def everything(collection: str, filters: Filters) -> list[Entity]:
        rows = _all(conn, branch_id, collection, filters, limit)
        if len(rows) > limit:
            truncated.append(collection)
        return rows[:limit]

    if target is not None and target.segment == "timeline-events":
        assert target_entity is not None
        events = [target_entity]
    else:
        timeline_id = UUID(target.id) if target and target.segment == "timelines" else None
        events = everything(
            "timeline_events",
            Filters(
                timeline_id=timeline_id,
                from_ordinal=_ordinal(calendar, params.get("from"), "from", end=False),
                to_ordinal=_ordinal(calendar, params.get("to"), "to", end=True),
            ),
        )
    return BranchContext(
        calendar=calendar,
        elements=everything("elements", Filters()),
        locations=everything("locations", Filters()),
        timelines=everything("timelines", Filters()),
        timeline_events=events,
        target=target,
        target_entity=target_entity,
        truncated=tuple(truncated),
    )


def _all(
    conn: Connection, branch_id: UUID, collection: str, filters: Filters, limit: int
) -> list[Entity]:
    """Up to `limit + 1` rows (one more than allowed shows that there were more)."""
    rows: list[Entity] = []
    cursor: str | None = None
    while len(rows) <= limit:
        page, cursor = list_entities(
            conn, branch_id, collection, filters, limit=PAGE, cursor=cursor, as_of=None
        )
        rows.extend(page)
        if cursor is None:
            break
    return rows[: limit + 1]


def _ordinal(calendar: Calendar, date: Any, field_name: str, *, end: bool) -> int | None:
    """The ordinal of `{year, month?, day?}` or `"YEAR[-MM[-DD]]"` (None when not given)."""
    if date is None:
        return None
    try:
        if isinstance(date, str):
            date = parse_query_date(date)
        checked = calendar.check(date, field_name)
    except ValueError as error:
        raise ContextError(f"{field_name}: {error}") from None
    except InvalidCommand as error:
        raise ContextError(error.detail) from None
    return calendar.ordinal(checked, end_of_period=end)
