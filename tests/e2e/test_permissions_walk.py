"""Every operation in `/openapi.json`, called as every kind of caller, against a table.

The table names the permission each operation needs (`read`, `write`, `admin`, `audit` as in
`api.security.PERMISSIONS`), or `user` (any valid access token) or `public` (no token). The
callers: the four roles, a stranger, the owner of another world, no token, and forged or
unusable tokens (expired, another key, `alg: none`, wrong audience, wrong issuer, a refresh
token). A new operation in the spec that the table does not cover fails the walk.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import jwt
import pytest
import requests

from api.security import PERMISSIONS
from tests.e2e.conftest import PASSWORD, Server, User
from tests.e2e.support import TIMEOUT, Client, branch_path

ROLES = ("owner", "editor", "viewer", "auditor")
OUTSIDERS = ("stranger", "other-owner")  # valid users with no role in the world: 404
BAD_TOKENS = ("none", "expired", "other-key", "alg-none", "wrong-aud", "wrong-iss", "refresh")
CALLERS = (*ROLES, *OUTSIDERS, *BAD_TOKENS)
W = "/api/v1/worlds/{world_id}"
B = W + "/branches/{branch}"
ENTITY_PATHS = ("locations", "elements", "timelines", "timeline-events")

# (method, path) -> what the operation needs.
TABLE: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/auth/register"): "public",
    ("POST", "/api/v1/auth/token"): "public",
    ("POST", "/api/v1/auth/refresh"): "public",
    ("GET", "/api/v1/me"): "user",
    ("GET", "/api/v1/worlds"): "user",
    ("POST", "/api/v1/worlds"): "user",
    ("POST", "/api/v1/worlds/import"): "user",
    ("GET", W): "read",
    ("PATCH", W): "admin",
    ("GET", W + "/members"): "read",
    ("PUT", W + "/members/{user_id}"): "admin",
    ("DELETE", W + "/members/{user_id}"): "admin",
    ("GET", W + "/branches"): "read",
    ("POST", W + "/branches"): "write",
    ("GET", B): "read",
    ("GET", W + "/compare"): "read",
    ("POST", B + "/merge"): "write",
    ("POST", B + "/revert"): "write",
    **{("GET", f"{B}/{c}"): "read" for c in ENTITY_PATHS},
    **{("POST", f"{B}/{c}"): "write" for c in ENTITY_PATHS},
    **{("GET", f"{B}/{c}/{{entity_id}}"): "read" for c in ENTITY_PATHS},
    **{("PATCH", f"{B}/{c}/{{entity_id}}"): "write" for c in ENTITY_PATHS},
    **{("DELETE", f"{B}/{c}/{{entity_id}}"): "write" for c in ENTITY_PATHS},
    ("GET", B + "/timelines/{timeline_id}/events"): "read",
    ("GET", B + "/search"): "read",
    ("POST", B + "/suggestions"): "write",
    ("GET", W + "/proposals"): "read",
    ("GET", W + "/proposals/{proposal_id}"): "read",
    ("POST", W + "/proposals/{proposal_id}/accept"): "write",
    ("POST", W + "/proposals/{proposal_id}/reject"): "write",
    ("GET", B + "/history"): "read",
    ("GET", B + "/{collection}/{entity_id}/history"): "read",
    ("GET", B + "/verify"): "audit",
    ("GET", W + "/export"): "audit",
}
SUCCESS = {200, 201, 202}
# After authorisation these may still refuse for reasons of state (a proposal still pending
# or already reviewed, a revert to the head): that proves the caller got past the check.
STATEFUL = ("/accept", "/reject", "/revert")
NEW_BODIES: dict[str, dict[str, Any]] = {
    "locations": {"name": "Watchtower", "kind": "tower"},
    "elements": {"name": "Sentry", "kind": "character"},
    "timelines": {"name": "Shifts"},
}


@dataclass
class Call:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    data: bytes | None = None
    content_type: str | None = None


@dataclass
class Stage:
    """A world with a member in every role, its content, a fork and a proposal."""

    server: Server
    users: dict[str, User]
    tokens: dict[str, str | None]
    world: dict[str, Any]
    ids: dict[str, str]
    spare: User
    archive: bytes

    @property
    def owner(self) -> Client:
        return Client(self.server, self.users["owner"])

    @property
    def branch(self) -> str:
        return branch_path(self.world)

    def fresh(self, collection: str) -> str:
        """A new entity, made by the owner, for a caller to try to delete."""
        if collection == "timeline-events":
            body: dict[str, Any] = {
                "timeline_id": self.ids["timelines"],
                "title": "Doomed",
                "start": {"year": 3},
            }
        else:
            body = NEW_BODIES[collection]
        return str(self.owner.create(f"{self.branch}/{collection}", body)["id"])

    def spare_member(self) -> str:
        """The spare user, (re)made a viewer, for a caller to try to remove."""
        added = self.owner.put(
            f"/worlds/{self.world['id']}/members/{self.spare.id}", {"role": "viewer"}
        )
        assert added.status_code == 200, added.text
        return self.spare.id


def mint(server: Server, user_id: str, kind: str) -> str | None:
    """A token for `user_id` that is wrong in the way `kind` says (None: no token)."""
    now = int(time.time())
    claims = {
        "sub": user_id,
        "typ": "access",
        "iat": now,
        "exp": now + 600,
        "iss": "space-pearl",
        "aud": "space-pearl-api",
        "jti": str(uuid4()),
    }
    key = server.jwt_secret
    if kind == "none":
        return None
    if kind == "expired":
        claims.update(iat=now - 4000, exp=now - 3600)
    elif kind == "other-key":
        key = "another-secret-of-sufficient-length-" + uuid4().hex
    elif kind == "wrong-aud":
        claims["aud"] = "someone-else"
    elif kind == "wrong-iss":
        claims["iss"] = "someone-else"
    elif kind == "refresh":
        claims["typ"] = "refresh"
    elif kind == "alg-none":
        header = _b64({"alg": "none", "typ": "JWT"})
        return f"{header}.{_b64(claims)}."
    return jwt.encode(claims, key, algorithm="HS256")


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def stage(server: Server, register: Callable[[], User]) -> Stage:
    users = {name: register() for name in (*ROLES, *OUTSIDERS)}
    owner = Client(server, users["owner"])
    world = owner.create("/worlds", {"name": "Walked world"})
    Client(server, users["other-owner"]).create("/worlds", {"name": "Elsewhere"})
    w = f"/worlds/{world['id']}"
    for role in ("editor", "viewer", "auditor"):
        assert owner.put(f"{w}/members/{users[role].id}", {"role": role}).status_code == 200
    branch = branch_path(world)
    ids = {
        c: str(owner.create(f"{branch}/{c}", NEW_BODIES[c])["id"])
        for c in ("locations", "elements", "timelines")
    }
    event = owner.create(
        f"{branch}/timeline-events",
        {"timeline_id": ids["timelines"], "title": "Night watch", "start": {"year": 12}},
    )
    ids["timeline-events"] = str(event["id"])
    owner.create(f"{w}/branches", {"name": "side", "from": "main"})
    proposal = owner.post(f"{branch}/suggestions", {"kind": "consistency"})
    assert proposal.status_code == 202, proposal.text
    ids["proposal"] = str(proposal.json()["id"])
    # The read model has caught up with every write above before the walk starts.
    last = proposal.json().get("position") or event["position"]
    settled = owner.get(f"{w}/proposals/{ids['proposal']}", {"min_position": last})
    assert settled.status_code == 200, settled.text
    archive = owner.get(f"{w}/export")
    assert archive.status_code == 200
    tokens: dict[str, str | None] = {name: user.token for name, user in users.items()}
    tokens.update({kind: mint(server, users["owner"].id, kind) for kind in BAD_TOKENS})
    return Stage(server, users, tokens, world, ids, register(), archive.content)


def build(stage: Stage, method: str, path: str) -> Call:
    """A concrete, valid request for the operation `method path`."""
    ids, owner = stage.ids, stage.users["owner"]
    entity = next((c for c in ENTITY_PATHS if f"/branches/{{branch}}/{c}/" in path), "")
    values = {
        "world_id": stage.world["id"],
        "branch": "main",
        "entity_id": ids.get(entity, ids["locations"]),
        "timeline_id": ids["timelines"],
        "proposal_id": ids["proposal"],
        "collection": "locations",
        "user_id": stage.spare.id,
    }
    if method == "DELETE" and entity:
        values["entity_id"] = stage.fresh(entity)
    if method == "DELETE" and path.endswith("{user_id}"):
        values["user_id"] = stage.spare_member()
    url = path.removeprefix("/api/v1").format(**values)
    call = Call(method, url)
    last = path.rsplit("/", 1)[-1]
    if path.endswith("/auth/register"):
        email = f"walk-{uuid4().hex[:12]}@example.com"
        call.json = {"email": email, "password": PASSWORD, "display_name": "Walker"}
    elif path.endswith("/auth/token"):
        call.json = {"email": owner.email, "password": PASSWORD}
    elif path.endswith("/auth/refresh"):
        call.json = {"refresh_token": owner.refresh_token}
    elif path.endswith("/worlds/import"):
        call.params = {"as_copy": "true"}
        call.data, call.content_type = stage.archive, "application/x-ndjson"
    elif method == "POST" and path.endswith("/worlds"):
        call.json = {"name": "Another"}
    elif method == "POST" and last in NEW_BODIES:
        call.json = NEW_BODIES[last]
    elif method == "POST" and last == "timeline-events":
        call.json = {"timeline_id": ids["timelines"], "title": "Alarm", "start": {"year": 5}}
    elif method == "PATCH":
        call.json = {"summary" if entity == "elements" else "description": "patched"}
    elif method == "PUT":
        call.json = {"role": "viewer"}
    elif method == "POST" and last == "branches":
        call.json = {"name": f"b-{uuid4().hex[:10]}", "from": "main"}
    elif last == "merge":
        call.json = {"source": "side", "dry_run": True}
    elif last == "revert":
        head = stage.owner.get(url.rsplit("/", 1)[0]).json()["head_version"]
        call.json = {"to_version": head}
    elif last == "suggestions":
        call.json = {"kind": "consistency"}
    elif last in ("accept", "reject"):
        call.json = {}
    elif last == "compare":
        call.params = {"base": "main", "head": "side"}
    elif last == "search":
        call.params = {"q": "Watchtower"}
    return call


def send(stage: Stage, call: Call, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if call.content_type:
        headers["Content-Type"] = call.content_type
    return requests.request(
        call.method,
        stage.server.api + call.path,
        json=call.json,
        params=call.params,
        data=call.data,
        headers=headers,
        timeout=TIMEOUT,
    )


def expected(method: str, path: str, caller: str) -> set[int]:
    """The statuses that are right for `caller` on the operation at `path`."""
    needs = TABLE[(method, path)]
    passed = SUCCESS | ({409, 422} if path.endswith(STATEFUL) else set())
    if needs == "public":
        return passed
    if caller in BAD_TOKENS:
        return {401}
    if needs == "user":
        return passed
    if caller in OUTSIDERS:
        return {404}
    return passed if needs in PERMISSIONS[caller] else {403}


def operations(server: Server) -> set[tuple[str, str]]:
    spec = requests.get(f"{server.url}/openapi.json", timeout=TIMEOUT).json()
    methods = ("get", "post", "put", "patch", "delete")
    return {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops if m in methods}


def test_the_table_covers_every_operation_in_the_spec(server: Server) -> None:
    found = operations(server)
    assert len(found) >= 49
    assert found - TABLE.keys() == set(), "operations the permission table does not cover"
    assert TABLE.keys() - found == set(), "table rows for operations the spec lacks"


@pytest.mark.parametrize(("method", "path"), sorted(TABLE), ids=lambda v: str(v))
def test_every_caller_gets_what_the_table_says(stage: Stage, method: str, path: str) -> None:
    needs = TABLE[(method, path)]
    wrong = []
    for caller in CALLERS:
        call = build(stage, method, path)
        response = send(stage, call, stage.tokens[caller])
        if response.status_code not in expected(method, path, caller):
            wrong.append((caller, response.status_code, response.text[:200]))
        elif response.status_code >= 400:
            assert response.headers["Content-Type"].startswith("application/problem+json")
    assert wrong == [], f"{method} {path} needs {needs}"
