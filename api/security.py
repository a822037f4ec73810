"""Who is calling, and what their role in a world lets them do."""

from __future__ import annotations

from uuid import UUID

from flask import g, request

from api.problems import ApiProblem
from api.services import services
from api.tokens import InvalidToken, verify
from api.world_access import Access
from commands.errors import NotFound
from commands.world import World

PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset({"read", "write", "admin", "audit"}),
    "editor": frozenset({"read", "write"}),
    "viewer": frozenset({"read"}),
    "auditor": frozenset({"read", "audit"}),
}


def current_user_id() -> str:
    """The caller's user id from a valid access token, else a 401 problem."""
    cached: str | None = g.get("user_id")
    if cached:
        return cached
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("send an access token as 'Authorization: Bearer <token>'")
    try:
        claims = verify(services().config, token.strip(), "access")
    except InvalidToken as error:
        raise unauthorized(str(error)) from None
    g.user_id = str(claims["sub"])
    return str(g.user_id)


def member_world(world_id: UUID, branch: str | None = None) -> Access:
    """The world (and `branch`'s row, when named), if the caller has a role in it; else 404,
    exactly as a missing world."""
    access = services().access.load(world_id, branch)
    if access.world.role_of(current_user_id()) is None:
        raise NotFound(f"world {world_id} does not exist")
    return access


def authorize(world_id: UUID, permission: str) -> World:
    """Load the world if the caller may do `permission` in it.

    A world the caller has no role in answers 404, exactly as a world that does not exist.
    The world the request's gate (api.gate) already loaded is used when it is this one.
    """
    user_id = current_user_id()
    world: World | None = g.get("member_world")
    if world is None or world.id != world_id:
        world = member_world(world_id).world
    role = world.role_of(user_id)
    if role is None:
        raise NotFound(f"world {world_id} does not exist")
    if permission not in PERMISSIONS[role]:
        raise ApiProblem(
            403, "Forbidden", f"the role {role!r} may not do this ({permission} needed)"
        )
    return world


def unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})
