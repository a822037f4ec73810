"""Reads across a branch: a timeline's events in in-world order, and ranked search."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView
from flask_smorest import Blueprint

from api.listing import list_content
from api.reading import cached_page, open_branch
from api.routes.content import PAGE_SCHEMAS
from api.schemas.content import SearchPageSchema
from api.schemas.queries import ContentListArgs, SearchArgs
from api.services import services
from queries import content

blp = Blueprint("search", __name__, description="Timelines in in-world order, and search")


@blp.route("/worlds/<uuid:world_id>/branches/<branch>/timelines/<uuid:timeline_id>/events")
class TimelineEvents(MethodView):
    @blp.arguments(ContentListArgs(), location="query")
    @blp.response(200, PAGE_SCHEMAS["timeline_events"])
    def get(self, args: dict[str, Any], world_id: UUID, branch: str, timeline_id: UUID) -> Any:
        """Events of one timeline in in-world order; `from`/`to` select overlapping spans."""
        read = open_branch(world_id, branch, args)
        events_args = {**args, "timeline_id": timeline_id}
        return list_content(read, "timeline_events", events_args)


@blp.route("/worlds/<uuid:world_id>/branches/<branch>/search")
class Search(MethodView):
    @blp.arguments(SearchArgs(), location="query")
    @blp.response(200, SearchPageSchema)
    def get(self, args: dict[str, Any], world_id: UUID, branch: str) -> Any:
        """Search names, titles, summaries and descriptions of all four collections, ranked."""
        read = open_branch(world_id, branch, args)

        def compute() -> dict[str, Any]:
            with services().reads.connect() as conn:
                items, next_cursor = content.search(
                    conn,
                    read.branch_id,
                    args["q"],
                    limit=args["limit"],
                    cursor=args.get("cursor"),
                    as_of=read.as_of,
                )
            return {"items": items, "next_cursor": next_cursor}

        return cached_page(read, compute)
