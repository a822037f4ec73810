"""Who may do what in a world: owner, editor, viewer, auditor, and a stranger with no role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import pytest
import requests

from tests.e2e.conftest import Server, User
from tests.e2e.support import (
    COLLECTIONS,
    Client,
    assert_invalid,
    assert_problem,
    branch_path,
    items,
)

ROLES = ("owner", "editor", "viewer", "auditor")
CALLERS = (*ROLES, "stranger")


@dataclass
class Cast:
    """A world, its members in every role, a stranger, and one entity of each collection."""

    server: Server
    users: dict[str, User]
    world: dict[str, Any]
    ids: dict[str, str]
    position: int
    spare: User
    clients: dict[str, Client] = field(default_factory=dict)

    @property
    def w(self) -> str:
        return f"/worlds/{self.world['id']}"

    @property
    def branch(self) -> str:
        return branch_path(self.world)

    @property
    def owner(self) -> Client:
        return self.clients["owner"]

    def fresh(self, collection: str) -> str:
        """A new entity made by the owner (a target to delete)."""
        body = {
            "locations": {"name": "Doomed", "kind": "ruin"},
            "elements": {"name": "Doomed", "kind": "artifact"},
        }[collection]
        return str(self.owner.create(f"{self.branch}/{collection}", body)["id"])


@pytest.fixture(scope="module")
def cast(server: Server, register: Callable[[], User]) -> Cast:
    users = {name: register() for name in CALLERS}
    owner = Client(server, users["owner"])
    world = owner.create("/worlds", {"name": "Guarded world"})
    w = f"/worlds/{world['id']}"
    for role in ("editor", "viewer", "auditor"):
        added = owner.put(f"{w}/members/{users[role].id}", {"role": role})
        assert added.status_code == 200, added.text
        assert added.json()["role"] == role
        assert added.json()["user_id"] == users[role].id
    branch = branch_path(world)
    location = owner.create(f"{branch}/locations", {"name": "Keep", "kind": "castle"})
    element = owner.create(f"{branch}/elements", {"name": "Guard", "kind": "character"})
    timeline = owner.create(f"{branch}/timelines", {"name": "Watches"})
    event = owner.create(
        f"{branch}/timeline-events",
        {"timeline_id": timeline["id"], "title": "Night watch", "start": {"year": 12}},
    )
    cast = Cast(
        server=server,
        users=users,
        world=world,
        ids={
            "locations": location["id"],
            "elements": element["id"],
            "timelines": timeline["id"],
            "timeline-events": event["id"],
        },
        position=event["position"],
        spare=register(),
    )
    cast.clients = {name: Client(server, user) for name, user in users.items()}
    return cast


@dataclass(frozen=True)
class Action:
    name: str
    needs: str  # "read", "write" or "admin"
    success: int
    request: Callable[[Cast, Client, Any], requests.Response]
    prepare: Callable[[Cast], Any] = lambda cast: None


def _read(name: str, path: Callable[[Cast], str], fresh: bool = True) -> Action:
    def request(cast: Cast, client: Client, _: Any) -> requests.Response:
        params = {"min_position": cast.position} if fresh else None
        return client.get(path(cast), params)

    return Action(name, "read", 200, request)


def _member_target(cast: Cast) -> str:
    """A member the owner adds (as a viewer) so that a caller can try to remove them."""
    response = cast.owner.put(f"{cast.w}/members/{cast.spare.id}", {"role": "viewer"})
    assert response.status_code == 200, response.text
    return cast.spare.id


def _collection_path(collection: str) -> Callable[[Cast], str]:
    return lambda cast: f"{cast.branch}/{collection}"


def _item_path(collection: str) -> Callable[[Cast], str]:
    return lambda cast: f"{cast.branch}/{collection}/{cast.ids[collection]}"


ACTIONS: list[Action] = [
    _read("get-world", lambda c: c.w, fresh=False),
    _read("list-members", lambda c: f"{c.w}/members", fresh=False),
    _read("list-branches", lambda c: f"{c.w}/branches"),
    _read("get-branch", lambda c: c.branch),
    *[_read(f"list-{name}", _collection_path(name)) for name in COLLECTIONS],
    *[_read(f"get-{name}-item", _item_path(name)) for name in COLLECTIONS],
    _read(
        "timeline-events-of-timeline", lambda c: f"{c.branch}/timelines/{c.ids['timelines']}/events"
    ),
    _read("search", lambda c: f"{c.branch}/search?q=Keep"),
    Action(
        "post-location",
        "write",
        201,
        lambda c, cl, _: cl.post(f"{c.branch}/locations", {"name": "Tower", "kind": "tower"}),
    ),
    Action(
        "post-element",
        "write",
        201,
        lambda c, cl, _: cl.post(f"{c.branch}/elements", {"name": "Spear", "kind": "artifact"}),
    ),
    Action(
        "post-timeline",
        "write",
        201,
        lambda c, cl, _: cl.post(f"{c.branch}/timelines", {"name": "Seasons"}),
    ),
    Action(
        "post-timeline-event",
        "write",
        201,
        lambda c, cl, _: cl.post(
            f"{c.branch}/timeline-events",
            {"timeline_id": c.ids["timelines"], "title": "Bell", "start": {"year": 13}},
        ),
    ),
    Action(
        "patch-location",
        "write",
        200,
        lambda c, cl, _: cl.patch(
            f"{c.branch}/locations/{c.ids['locations']}", {"description": uuid4().hex}
        ),
    ),
    Action(
        "patch-timeline-event",
        "write",
        200,
        lambda c, cl, _: cl.patch(
            f"{c.branch}/timeline-events/{c.ids['timeline-events']}", {"description": uuid4().hex}
        ),
    ),
    Action(
        "delete-location",
        "write",
        200,
        lambda c, cl, target: cl.delete(f"{c.branch}/locations/{target}"),
        prepare=lambda c: c.fresh("locations"),
    ),
    Action(
        "delete-element",
        "write",
        200,
        lambda c, cl, target: cl.delete(f"{c.branch}/elements/{target}"),
        prepare=lambda c: c.fresh("elements"),
    ),
    Action(
        "patch-world",
        "admin",
        200,
        lambda c, cl, _: cl.patch(c.w, {"description": uuid4().hex}),
    ),
    Action(
        "put-member",
        "admin",
        200,
        lambda c, cl, _: cl.put(f"{c.w}/members/{c.spare.id}", {"role": "auditor"}),
    ),
    Action(
        "delete-member",
        "admin",
        200,
        lambda c, cl, target: cl.delete(f"{c.w}/members/{target}"),
        prepare=_member_target,
    ),
]

ALLOWED = {
    "owner": {"read", "write", "admin"},
    "editor": {"read", "write"},
    "viewer": {"read"},
    "auditor": {"read"},
    "stranger": set(),
}


class TestPermissionsByRole:
    @pytest.mark.parametrize("caller", CALLERS)
    @pytest.mark.parametrize("action", ACTIONS, ids=[a.name for a in ACTIONS])
    def test_each_role_gets_what_its_permissions_allow(
        self, cast: Cast, caller: str, action: Action
    ) -> None:
        target = action.prepare(cast)
        before = cast.server.event_count()
        response = action.request(cast, cast.clients[caller], target)
        if action.needs in ALLOWED[caller]:
            assert response.status_code == action.success, response.text
            return
        expected = 404 if caller == "stranger" else 403
        assert_problem(response, expected)
        assert cast.server.event_count() == before, "a refused request appended events"

    def test_the_member_list_names_every_role(self, cast: Cast) -> None:
        listed = items(cast.clients["viewer"].get(f"{cast.w}/members"))
        roles = {member["user_id"]: member["role"] for member in listed}
        for role in ROLES:
            assert roles[cast.users[role].id] == role
        assert cast.users["stranger"].id not in roles

    def test_a_stranger_does_not_see_the_world_in_their_list(self, cast: Cast) -> None:
        mine = items(cast.clients["stranger"].get("/worlds"))
        assert cast.world["id"] not in [world["id"] for world in mine]


@dataclass
class Fresh:
    """A new world of the cast's owner, and two accounts that have no role in it yet."""

    server: Server
    owner: User
    guest: User
    heir: User
    path: str

    def as_(self, user: User) -> Client:
        return Client(self.server, user)


@pytest.fixture
def fresh(cast: Cast) -> Fresh:
    owner = cast.users["owner"]
    world = Client(cast.server, owner).create("/worlds", {"name": "Members only"})
    return Fresh(cast.server, owner, cast.users["stranger"], cast.spare, f"/worlds/{world['id']}")


class TestUnknownWorlds:
    @pytest.mark.parametrize(
        ("method", "suffix", "body"),
        [
            ("GET", "", None),
            ("PATCH", "", {"name": "x"}),
            ("GET", "/members", None),
            ("PUT", "/members/{me}", {"role": "viewer"}),
            ("DELETE", "/members/{me}", None),
            ("GET", "/branches", None),
            ("GET", "/branches/main", None),
            ("GET", "/branches/main/locations", None),
            ("POST", "/branches/main/locations", {"name": "x", "kind": "y"}),
        ],
    )
    def test_a_world_that_does_not_exist_is_404(
        self, cast: Cast, method: str, suffix: str, body: Any
    ) -> None:
        owner = cast.users["owner"]
        path = f"{cast.server.api}/worlds/{uuid4()}{suffix.format(me=owner.id)}"
        response = requests.request(method, path, json=body, headers=owner.auth, timeout=10)
        assert_problem(response, 404)

    def test_a_world_id_that_is_not_a_uuid_is_404(self, cast: Cast) -> None:
        assert_problem(cast.owner.get("/worlds/not-a-world"), 404)


class TestManagingMembers:
    def test_a_new_member_can_read_at_once_and_a_removed_one_cannot(self, fresh: Fresh) -> None:
        as_guest, as_owner = fresh.as_(fresh.guest), fresh.as_(fresh.owner)
        assert_problem(as_guest.get(fresh.path), 404)
        added = as_owner.put(f"{fresh.path}/members/{fresh.guest.id}", {"role": "viewer"})
        assert added.status_code == 200, added.text
        assert added.json()["user_id"] == fresh.guest.id
        assert added.json()["role"] == "viewer"
        assert as_guest.get(fresh.path).status_code == 200
        removed = as_owner.delete(f"{fresh.path}/members/{fresh.guest.id}")
        assert removed.status_code == 200, removed.text
        assert removed.json()["user_id"] == fresh.guest.id
        assert_problem(as_guest.get(fresh.path), 404)
        listed = items(as_owner.get(f"{fresh.path}/members"))
        assert fresh.guest.id not in [member["user_id"] for member in listed]

    def test_a_role_change_is_reported_and_takes_effect(self, fresh: Fresh) -> None:
        as_guest, as_owner = fresh.as_(fresh.guest), fresh.as_(fresh.owner)
        member = f"{fresh.path}/members/{fresh.guest.id}"
        assert as_owner.put(member, {"role": "viewer"}).status_code == 200
        assert_problem(as_guest.patch(fresh.path, {"name": "Mine now"}), 403)
        promoted = as_owner.put(member, {"role": "owner"})
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["user_id"] == fresh.guest.id
        assert promoted.json()["role"] == "owner"
        renamed = as_guest.patch(fresh.path, {"name": "Mine now"})
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["name"] == "Mine now"

    def test_a_user_id_without_an_account_is_a_422(self, fresh: Fresh) -> None:
        before = fresh.server.event_count()
        response = fresh.as_(fresh.owner).put(f"{fresh.path}/members/{uuid4()}", {"role": "viewer"})
        assert_invalid(response)
        assert fresh.server.event_count() == before

    def test_a_user_id_that_is_not_a_uuid_is_a_404(self, fresh: Fresh) -> None:
        response = fresh.as_(fresh.owner).put(
            f"{fresh.path}/members/not-a-uuid", {"role": "viewer"}
        )
        assert_problem(response, 404)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"role": "admin"}, "role"),
            ({"role": "Owner"}, "role"),
            ({"role": ""}, "role"),
            ({"role": 1}, "role"),
            ({}, "role"),
            ({"role": "viewer", "since": "today"}, "since"),
        ],
        ids=["admin", "capitalised", "empty", "number", "missing", "unknown-field"],
    )
    def test_a_role_outside_the_enum_is_a_422(
        self, fresh: Fresh, body: dict[str, Any], field: str
    ) -> None:
        before = fresh.server.event_count()
        response = fresh.as_(fresh.owner).put(f"{fresh.path}/members/{fresh.guest.id}", body)
        assert_invalid(response, field)
        assert fresh.server.event_count() == before
        assert_problem(fresh.as_(fresh.guest).get(fresh.path), 404)

    def test_the_last_owner_can_be_neither_removed_nor_demoted(self, fresh: Fresh) -> None:
        as_owner = fresh.as_(fresh.owner)
        me = f"{fresh.path}/members/{fresh.owner.id}"
        before = fresh.server.event_count()
        assert_problem(as_owner.delete(me), 409)
        for role in ("editor", "viewer", "auditor"):
            assert_problem(as_owner.put(me, {"role": role}), 409)
        assert fresh.server.event_count() == before
        listed = items(as_owner.get(f"{fresh.path}/members"))
        assert {m["user_id"]: m["role"] for m in listed} == {fresh.owner.id: "owner"}

    def test_with_a_second_owner_the_first_may_step_down(self, fresh: Fresh) -> None:
        as_owner, as_heir = fresh.as_(fresh.owner), fresh.as_(fresh.heir)
        assert (
            as_owner.put(f"{fresh.path}/members/{fresh.heir.id}", {"role": "owner"}).status_code
            == 200
        )
        stepped = as_owner.put(f"{fresh.path}/members/{fresh.owner.id}", {"role": "editor"})
        assert stepped.status_code == 200, stepped.text
        assert_problem(as_owner.patch(fresh.path, {"name": "Still mine?"}), 403)
        assert_problem(as_heir.delete(f"{fresh.path}/members/{fresh.heir.id}"), 409)
        assert as_heir.delete(f"{fresh.path}/members/{fresh.owner.id}").status_code == 200
        assert_problem(as_owner.get(fresh.path), 404)

    def test_removing_someone_who_is_not_a_member_is_a_404(self, fresh: Fresh) -> None:
        response = fresh.as_(fresh.owner).delete(f"{fresh.path}/members/{fresh.guest.id}")
        assert_problem(response, 404)
