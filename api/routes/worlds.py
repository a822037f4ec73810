"""Worlds and their members."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from flask.views import MethodView
from flask_smorest import Blueprint

from api import preconditions, users
from api.commanding import execute, written
from api.idempotency import idempotent
from api.problems import ApiProblem
from api.reading import await_position
from api.schemas.queries import WorldListArgs
from api.schemas.worlds import (
    MemberListSchema,
    MemberRoleSchema,
    MemberSchema,
    WorldCreateSchema,
    WorldPageSchema,
    WorldPatchSchema,
    WorldSchema,
)
from api.security import authorize, current_user_id
from api.services import services
from commands.application import world_resource
from commands.messages import CreateWorld, RemoveMember, SetMemberRole, UpdateWorld
from queries import worlds as world_queries

blp = Blueprint("worlds", __name__, description="Worlds and their members")


@blp.route("/worlds")
class Worlds(MethodView):
    @blp.arguments(WorldListArgs(), location="query")
    @blp.response(200, WorldPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """Worlds you have a role in, oldest first, each with your `role`."""
        user_id = UUID(current_user_id())
        await_position(args.get("min_position"))
        with services().reads.connect() as conn:
            items, next_cursor = world_queries.worlds_of(
                conn, user_id, limit=args["limit"], cursor=args.get("cursor")
            )
        return {"items": items, "next_cursor": next_cursor}

    @idempotent
    @blp.arguments(WorldCreateSchema())
    @blp.response(201, WorldSchema)
    def post(self, body: dict[str, Any]) -> Any:
        """Create a world; you become its owner and it gets a `main` branch."""
        world_id = uuid4()
        outcome = execute(CreateWorld(world_id=world_id, owner_id=current_user_id(), **body))
        return written(outcome, 201, f"/api/v1/worlds/{world_id}")


@blp.route("/worlds/<uuid:world_id>")
class WorldById(MethodView):
    @blp.response(200, WorldSchema)
    def get(self, world_id: UUID) -> Any:
        """A world's settings (any role)."""
        return preconditions.read(world_resource(authorize(world_id, "read")))

    @blp.arguments(WorldPatchSchema())
    @blp.response(200, WorldSchema)
    def patch(self, body: dict[str, Any], world_id: UUID) -> Any:
        """Rename, describe or set the calendar of a world (owners only)."""
        authorize(world_id, "admin")
        command = UpdateWorld(world_id, body, preconditions.expected_version())
        return written(execute(command))


@blp.route("/worlds/<uuid:world_id>/members")
class Members(MethodView):
    @blp.response(200, MemberListSchema)
    def get(self, world_id: UUID) -> Any:
        """Who has which role in the world."""
        world = authorize(world_id, "read")
        items = [{"user_id": u, "role": r} for u, r in world.members.items()]
        return {"items": items, "next_cursor": None}


@blp.route("/worlds/<uuid:world_id>/members/<uuid:user_id>")
class Member(MethodView):
    @blp.arguments(MemberRoleSchema())
    @blp.response(200, MemberSchema)
    def put(self, body: dict[str, Any], world_id: UUID, user_id: UUID) -> Any:
        """Give a user a role in the world, or change it (owners only)."""
        authorize(world_id, "admin")
        if users.find(services().engine, str(user_id)) is None:
            raise ApiProblem(
                422,
                "Validation failed",
                f"no account has id {user_id}",
                kind="validation",
                errors={"user_id": ["unknown user"]},
            )
        return written(execute(SetMemberRole(world_id, str(user_id), body["role"])))

    @blp.response(200, MemberSchema)
    def delete(self, world_id: UUID, user_id: UUID) -> Any:
        """Remove a user from the world (owners only; the last owner stays)."""
        authorize(world_id, "admin")
        return written(execute(RemoveMember(world_id, str(user_id))))
