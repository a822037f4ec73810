"""Branches of a world: list, fork, compare, merge and revert."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask.views import MethodView
from flask_smorest import Blueprint

from api.commanding import execute, written
from api.idempotency import idempotent
from api.reading import await_position
from api.schemas.branches import (
    CompareArgs,
    ComparisonSchema,
    ForkedSchema,
    ForkSchema,
    MergedSchema,
    MergeSchema,
    RevertedSchema,
    RevertSchema,
)
from api.schemas.queries import ReadArgs
from api.schemas.worlds import BranchPageSchema, BranchSchema
from api.security import authorize
from api.services import services
from commands.errors import NotFound
from commands.messages import ForkBranch, MergeBranch, RevertBranch
from queries import worlds as world_queries

blp = Blueprint("branches", __name__, description="Branches: fork, compare, merge, revert")


@blp.route("/worlds/<uuid:world_id>/branches")
class Branches(MethodView):
    @blp.arguments(ReadArgs(), location="query")
    @blp.response(200, BranchPageSchema)
    def get(self, args: dict[str, Any], world_id: UUID) -> Any:
        """The world's branches, oldest first."""
        authorize(world_id, "read")
        await_position(args.get("min_position"))
        with services().reads.connect() as conn:
            items = world_queries.branches_of(conn, world_id)
        return {"items": items, "next_cursor": None}

    @idempotent
    @blp.arguments(ForkSchema())
    @blp.response(201, ForkedSchema)
    def post(self, body: dict[str, Any], world_id: UUID) -> Any:
        """Fork a branch (`from`, default `main`) at `at_version` (default its head)."""
        authorize(world_id, "write")
        command = ForkBranch(world_id, body["name"], body["from_"], body.get("at_version"))
        location = f"/api/v1/worlds/{world_id}/branches/{body['name']}"
        return written(execute(command), 201, location)


@blp.route("/worlds/<uuid:world_id>/branches/<branch>")
class BranchByName(MethodView):
    @blp.arguments(ReadArgs(), location="query")
    @blp.response(200, BranchSchema)
    def get(self, args: dict[str, Any], world_id: UUID, branch: str) -> Any:
        """A branch: its head version and where it was forked from."""
        authorize(world_id, "read")
        await_position(args.get("min_position"))
        with services().reads.connect() as conn:
            found = world_queries.branch(conn, world_id, branch)
        if found is None:
            raise NotFound(f"branch {branch!r} does not exist in this world")
        return found


@blp.route("/worlds/<uuid:world_id>/compare")
class Compare(MethodView):
    @blp.arguments(CompareArgs(), location="query")
    @blp.response(200, ComparisonSchema)
    def get(self, args: dict[str, Any], world_id: UUID) -> Any:
        """What differs between two branches (`name` or `name@version`), field by field."""
        authorize(world_id, "read")
        return services().history.compare(world_id, args["base"], args["head"])


@blp.route("/worlds/<uuid:world_id>/branches/<branch>/merge")
class Merge(MethodView):
    @idempotent
    @blp.arguments(MergeSchema())
    @blp.response(200, MergedSchema)
    def post(self, body: dict[str, Any], world_id: UUID, branch: str) -> Any:
        """Apply `source`'s changes since the common ancestor; 409 lists every conflict."""
        authorize(world_id, "write")
        return written(execute(MergeBranch(world_id, branch, body["source"], body["dry_run"])))


@blp.route("/worlds/<uuid:world_id>/branches/<branch>/revert")
class Revert(MethodView):
    @idempotent
    @blp.arguments(RevertSchema())
    @blp.response(200, RevertedSchema)
    def post(self, body: dict[str, Any], world_id: UUID, branch: str) -> Any:
        """Append the compensating events that bring the branch back to `to_version`."""
        authorize(world_id, "write")
        return written(execute(RevertBranch(world_id, branch, body["to_version"])))
