"""What every read under a branch shares: access, read-your-writes, version, caching."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from flask import Response, request

from api.problems import ApiProblem
from api.security import authorize
from api.services import services
from commands.errors import InvalidCommand, NotFound
from commands.world import World
from queries import consistency
from queries import worlds as world_queries


@dataclass(frozen=True)
class BranchRead:
    world: World
    branch_id: UUID
    head_version: int
    as_of: int | None


def await_position(min_position: int | None) -> None:
    """Wait (bounded) until the read tables include `min_position`, else 503."""
    if min_position is None:
        return
    svc = services()
    if not consistency.wait_for(svc.engine, min_position, svc.config.min_position_wait):
        raise ApiProblem(
            503,
            "Projection behind",
            f"the read model has not reached position {min_position} yet; retry shortly",
            headers={"Retry-After": "1"},
        )


def open_branch(world_id: UUID, branch: str, args: dict[str, Any]) -> BranchRead:
    world = authorize(world_id, "read")
    await_position(args.get("min_position"))
    with services().engine.connect() as conn:
        found = world_queries.branch(conn, world_id, branch)
    if found is None:
        raise NotFound(f"branch {branch!r} does not exist in this world")
    as_of = args.get("as_of_version")
    if as_of is not None and as_of > found["head_version"]:
        raise InvalidCommand.field(
            "as_of_version", f"the branch is at version {found['head_version']}"
        )
    return BranchRead(world, UUID(found["branch_id"]), found["head_version"], as_of)


def cached(world_id: UUID, compute: Callable[[], Any]) -> Any:
    """`compute()` through the query cache, keyed by the world's projected position."""
    svc = services()
    with svc.engine.connect() as conn:
        position = world_queries.world_position(conn, world_id)
    if position is None:
        return compute()
    args = sorted((k, v) for k, v in request.args.items(multi=True) if k != "min_position")
    key = svc.cache.key(str(world_id), position, f"{request.path}?{json.dumps(args)}")
    return svc.cache.fetch(key, compute)


def page(body: dict[str, Any]) -> Any:
    """A list result with a strong ETag of its content; 304 on a matching If-None-Match."""
    etag = '"' + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32] + '"'
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        response = Response(status=304)
        response.headers["ETag"] = etag
        return response
    return body, 200, {"ETag": etag}
