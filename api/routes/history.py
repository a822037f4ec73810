"""A branch's change log, one entity's history with field diffs, and chain verification."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView
from flask_smorest import Blueprint

from api.listing import paged
from api.reading import open_branch, page
from api.schemas.history import (
    ChangeLogArgs,
    ChangeLogPageSchema,
    EntityHistoryPageSchema,
    VerifySchema,
)
from api.schemas.queries import PageArgs
from api.security import authorize
from api.services import services
from commands.errors import NotFound
from commands.verification import verify_branch, verify_world
from queries import history

blp = Blueprint("history", __name__, description="Change log, entity history, tamper evidence")

BRANCH = "/worlds/<uuid:world_id>/branches/<branch>"
# URL segment of each collection: its name on the write side.
COLLECTIONS = {
    "locations": "locations",
    "elements": "elements",
    "timelines": "timelines",
    "timeline-events": "timeline_events",
}
SEGMENTS = ", ".join(f'"{segment}"' for segment in COLLECTIONS)


@blp.route(f"{BRANCH}/history")
class ChangeLog(MethodView):
    @blp.arguments(ChangeLogArgs(), location="query")
    @blp.response(200, ChangeLogPageSchema)
    def get(self, args: dict[str, Any], world_id: UUID, branch: str) -> Any:
        """The branch's change log, in version order.

        Filters: `actor`, `entity_id`, `type`, `since` <= recorded_at < `until` (ISO 8601),
        `after_version`. A fork's log includes its parent's changes up to the fork point.
        """
        read = open_branch(world_id, branch, args)
        filters = history.ChangeFilters(
            actor=args.get("actor"),
            entity_id=args.get("entity_id"),
            type=args.get("type"),
            since=args.get("since"),
            until=args.get("until"),
            after_version=args.get("after_version"),
            as_of=read.as_of,
        )

        def compute() -> dict[str, Any]:
            with services().reads.connect() as conn:
                items, next_cursor = history.change_log(
                    conn, world_id, branch, filters, limit=args["limit"], cursor=args.get("cursor")
                )
            return {"items": items, "next_cursor": next_cursor}

        return page(paged(read, compute))


@blp.route(f"{BRANCH}/<any({SEGMENTS}):collection>/<uuid:entity_id>/history")
class EntityHistory(MethodView):
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, EntityHistoryPageSchema)
    def get(
        self, args: dict[str, Any], world_id: UUID, branch: str, collection: str, entity_id: UUID
    ) -> Any:
        """One entity's changes, in version order, with field diffs.

        Each change lists `{field: {"before", "after"}}` for the fields it changed: a creation
        has `before` null, a removal `after` null.
        """
        read = open_branch(world_id, branch, args)

        def compute() -> dict[str, Any]:
            with services().reads.connect() as conn:
                found = history.entity_history(
                    conn,
                    world_id,
                    branch,
                    COLLECTIONS[collection],
                    entity_id,
                    limit=args["limit"],
                    cursor=args.get("cursor"),
                    as_of=read.as_of,
                )
            if found is None:
                raise NotFound(f"{collection[:-1]} {entity_id} has no history on this branch")
            items, next_cursor = found
            return {"items": items, "next_cursor": next_cursor}

        return page(paged(read, compute))


@blp.route(f"{BRANCH}/verify")
class Verify(MethodView):
    @blp.response(200, VerifySchema)
    def get(self, world_id: UUID, branch: str) -> Any:
        """Verify the branch's hash chain (owners and auditors).

        Recomputes every hash from the event store, through the fork points into the parent
        branches, and reports the first version that does not verify.
        """
        world = authorize(world_id, "audit")
        if branch not in world.branches:
            raise NotFound(f"branch {branch!r} does not exist in this world")
        store = services().history
        verdict = verify_branch(store, world, branch)
        world_verdict = verify_world(store, world_id)
        return {
            "valid": verdict.valid,
            "checked": verdict.checked,
            "first_invalid_version": verdict.first_invalid_version,
            "world_valid": world_verdict.valid,
            "world_checked": world_verdict.checked,
        }
