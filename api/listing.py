"""Filtered, keyset-paginated, cached pages of a branch's content."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from api.reading import BranchRead, cached, cached_page
from api.services import services
from queries import content


def filters_from(read: BranchRead, args: dict[str, Any]) -> content.Filters:
    calendar = read.world.calendar_rules
    bounds: dict[str, int] = {}
    for name, key, end in (("from_", "from_ordinal", False), ("to", "to_ordinal", True)):
        if name in args:
            date = calendar.check(args[name], "from" if name == "from_" else "to")
            bounds[key] = calendar.ordinal(date, end_of_period=end)
    parent = args.get("parent_id")
    return content.Filters(
        kind=args.get("kind"),
        tag=args.get("tag"),
        parent_id=UUID(parent) if parent and parent != "null" else None,
        roots_only=parent == "null",
        timeline_id=args.get("timeline_id"),
        element_id=args.get("element_id"),
        location_id=args.get("location_id"),
        q=args.get("q"),
        metadata=args.get("metadata"),
        **bounds,
    )


def list_content(read: BranchRead, collection: str, args: dict[str, Any]) -> Any:
    """A page of `collection` (a bad cursor is mapped to 422 by api.problems)."""
    filters = filters_from(read, args)

    def compute() -> dict[str, Any]:
        with services().reads.connect() as conn:
            items, next_cursor = content.list_entities(
                conn,
                read.branch_id,
                collection,
                filters,
                limit=args["limit"],
                cursor=args.get("cursor"),
                as_of=read.as_of,
            )
        return {"items": items, "next_cursor": next_cursor}

    return cached_page(read, compute)


def paged(read: BranchRead, compute: Any) -> dict[str, Any]:
    """A page through the query cache (a bad cursor is mapped to 422 by api.problems)."""
    result: dict[str, Any] = cached(read, compute)
    return result
