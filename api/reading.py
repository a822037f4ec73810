"""What every read under a branch shares: access, read-your-writes, version, caching.

A cached page is stored as the bytes of its response (its ETag, a newline, the JSON body), so
a cache hit is answered without decoding or serialising anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from flask import Response, current_app, g, request

from api.problems import ApiProblem
from api.security import authorize
from api.services import services
from api.world_access import Access, BranchRow
from commands.errors import InvalidCommand, NotFound
from commands.world import World
from queries import consistency


@dataclass(frozen=True)
class BranchRead:
    world: World
    branch_id: UUID
    head_version: int
    as_of: int | None
    position: int | None = None  # the world's projected position when the branch was read


def await_position(min_position: int | None) -> None:
    """Wait (bounded) until the read tables include `min_position`, else 503."""
    if min_position is None:
        return
    svc = services()
    if not consistency.wait_for(svc.reads, min_position, svc.config.min_position_wait):
        raise ApiProblem(
            503,
            "Projection behind",
            f"the read model has not reached position {min_position} yet; retry shortly",
            headers={"Retry-After": "1"},
        )


def open_branch(world_id: UUID, branch: str, args: dict[str, Any]) -> BranchRead:
    world = authorize(world_id, "read")
    min_position = args.get("min_position")
    gate: Access | None = g.get("access")  # what api.gate read with the caller's access
    looked_up = gate is not None and gate.world.id == world_id and gate.branch_name == branch
    found = gate.branch if gate is not None and looked_up else None
    if not looked_up or not _includes(found, min_position):
        await_position(min_position)
        found = services().access.load(world_id, branch).branch
    if found is None:
        raise NotFound(f"branch {branch!r} does not exist in this world")
    as_of = args.get("as_of_version")
    if as_of is not None and as_of > found.head_version:
        raise InvalidCommand.field(
            "as_of_version", f"the branch is at version {found.head_version}"
        )
    return BranchRead(world, found.branch_id, found.head_version, as_of, found.position)


def _includes(found: BranchRow | None, min_position: int | None) -> bool:
    """Whether a read of `found` already includes `min_position` (a world projected that far
    means the projection is: it applies events in order)."""
    if min_position is None:
        return True
    if found is None:
        return False  # (a branch made by that write may not be projected yet)
    return found.position is not None and found.position >= min_position


def cached(read: BranchRead, compute: Callable[[], Any]) -> Any:
    """`compute()` through the query cache, keyed by the world's projected position as the
    branch was read (no second query for it)."""
    if read.position is None:
        return compute()
    svc = services()
    key = svc.cache.key(str(read.world.id), read.position, _request_key())
    return svc.cache.fetch(key, compute)


def _request_key() -> str:
    """The path and the arguments (but `min_position`) of the request, in a stable order."""
    args = sorted((k, v) for k, v in request.args.items(multi=True) if k != "min_position")
    return f"{request.path}?{json.dumps(args)}"


def cached_page(read: BranchRead, compute: Callable[[], dict[str, Any]]) -> Response:
    """The page `compute()` answers, with a strong ETag of its content (304 on a matching
    If-None-Match), through the query cache keyed by the world's projected position: exactly
    the bytes and headers of a miss, without recomputing them.

    The page is served as `compute()` builds it, not dumped through its marshmallow schema:
    `queries.content` builds resources as the API shows them (dumping a page of 50 costs
    more than rendering its JSON; tests/integration/test_read_cache_pages.py proves the
    schema's dump of every kind of page leaves it unchanged)."""
    if read.position is None:
        stored = _rendered(compute())
    else:
        svc = services()
        # "page": these entries hold response bytes, never the JSON values `cached` keeps
        key = svc.cache.key(str(read.world.id), read.position, "page " + _request_key())
        stored = svc.cache.fetch_bytes(key, lambda: _rendered(compute()))
    raw_etag, _, body = stored.partition(b"\n")
    etag = raw_etag.decode()
    if _not_modified(etag):
        return _not_modified_response(etag)
    mimetype = getattr(current_app.json, "mimetype", "application/json")
    response = current_app.response_class(body, mimetype=mimetype)
    response.headers["ETag"] = etag
    return response


def _rendered(body: dict[str, Any]) -> bytes:
    """What the cache keeps of a page: its ETag, a newline, and the JSON response body (as
    Flask serialises it: keys sorted, so the same content gives the same bytes)."""
    rendered: Response = current_app.json.response(body)  # type: ignore[assignment]
    data: bytes = rendered.get_data()
    return etag_of(data).encode() + b"\n" + data


def etag_of(data: bytes) -> str:
    """A strong ETag of a representation: a digest of its bytes."""
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def page_etag(body: dict[str, Any]) -> str:
    """A strong ETag of a page's content (for pages not served by `cached_page`)."""
    return etag_of(json.dumps(body, sort_keys=True).encode())


def page(body: dict[str, Any]) -> Any:
    """A list result with a strong ETag of its content; 304 on a matching If-None-Match."""
    etag = page_etag(body)
    if _not_modified(etag):
        return _not_modified_response(etag)
    return body, 200, {"ETag": etag}


def _not_modified(etag: str) -> bool:
    return etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]


def _not_modified_response(etag: str) -> Response:
    response = Response(status=304)
    response.headers["ETag"] = etag
    return response
