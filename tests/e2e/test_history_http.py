"""History over real HTTP: the change log, one entity's history, and verifying the hash chain.

The tamper tests edit stored event rows in PostgreSQL directly, each in a world of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any
from uuid import UUID, uuid5

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import Server, User
from tests.e2e.support import Client, assert_invalid, assert_problem, branch_path, items

EVERY_FIELD = {
    "version",
    "position",
    "type",
    "entity_id",
    "actor",
    "recorded_at",
    "correlation_id",
    "causation_id",
    "hash",
    "prev_hash",
    "data",
}


@dataclass
class Cast:
    """A world with members in every role, a stranger, and a few changes by two writers."""

    users: dict[str, User]
    clients: dict[str, Client]
    world: dict[str, Any]
    ids: dict[str, str]
    versions: dict[str, int]
    position: int

    @property
    def branch(self) -> str:
        return branch_path(self.world)

    @property
    def owner(self) -> Client:
        return self.clients["owner"]

    def history(self, client: str = "owner", **params: Any) -> list[dict[str, Any]]:
        """The whole change log as `client` reads it (a single page)."""
        response = self.clients[client].get(
            f"{self.branch}/history", {"min_position": self.position, "limit": 200, **params}
        )
        found = items(response)
        assert response.json()["next_cursor"] is None
        return found


@pytest.fixture(scope="module")
def cast(server: Server, register: Callable[[], User]) -> Cast:
    users = {name: register() for name in ("owner", "editor", "viewer", "auditor", "stranger")}
    clients = {name: Client(server, user) for name, user in users.items()}
    owner, editor = clients["owner"], clients["editor"]
    world = owner.create("/worlds", {"name": "Chronicled world"})
    for role in ("editor", "viewer", "auditor"):
        added = owner.put(f"/worlds/{world['id']}/members/{users[role].id}", {"role": role})
        assert added.status_code == 200, added.text
    branch = branch_path(world)
    keep = owner.create(
        f"{branch}/locations",
        {"name": "Keep", "kind": "castle", "metadata": {"walls": 2, "gate": "north"}},
        X_Request_ID="req-keep",
    )
    guard = editor.create(f"{branch}/elements", {"name": "Guard", "kind": "character"})
    age = owner.create(f"{branch}/timelines", {"name": "Watches"})
    patched = owner.patch(
        f"{branch}/locations/{keep['id']}",
        {"name": "High Keep", "metadata": {"walls": 3, "gate": None}},
    )
    assert patched.status_code == 200, patched.text
    watch = editor.create(
        f"{branch}/timeline-events",
        {"timeline_id": age["id"], "title": "Night watch", "start": {"year": 12}},
    )
    removed = owner.delete(f"{branch}/elements/{guard['id']}")
    assert removed.status_code == 200, removed.text
    return Cast(
        users=users,
        clients=clients,
        world=world,
        ids={"keep": keep["id"], "guard": guard["id"], "age": age["id"], "watch": watch["id"]},
        versions={
            "keep": keep["version"],
            "guard": guard["version"],
            "age": age["version"],
            "patch keep": patched.json()["version"],
            "watch": watch["version"],
            "remove guard": removed.json()["version"],
        },
        position=removed.json()["position"],
    )


class TestTheChangeLog:
    def test_lists_every_change_in_version_order_with_every_contract_field(
        self, cast: Cast
    ) -> None:
        log = cast.history()
        assert [e["version"] for e in log] == list(range(cast.versions["remove guard"] + 1))
        assert [e["type"] for e in log] == [
            "BranchStarted",
            "LocationAdded",
            "ElementAdded",
            "TimelineAdded",
            "LocationUpdated",
            "TimelineEventAdded",
            "ElementRemoved",
        ]
        assert all(set(e) >= EVERY_FIELD for e in log)
        assert all(b["prev_hash"] == a["hash"] for a, b in pairwise(log))

    def test_an_entry_says_who_did_what_in_which_request(self, cast: Cast) -> None:
        added = cast.history()[cast.versions["keep"]]
        assert added["entity_id"] == cast.ids["keep"]
        assert added["collection"] == "locations"
        assert added["actor"] == cast.users["owner"].id
        assert added["correlation_id"] == "req-keep"
        assert added["causation_id"] is None
        assert added["data"]["fields"]["name"] == "Keep"

    def test_reads_its_own_writes_with_min_position(
        self, server: Server, owner: User, world: dict[str, Any]
    ) -> None:
        client = Client(server, owner)
        created = client.create(f"{branch_path(world)}/timelines", {"name": "Fresh"})
        response = client.get(
            f"{branch_path(world)}/history", {"min_position": created["position"]}
        )
        found = items(response)
        assert [(e["version"], e["entity_id"]) for e in found] == [(0, None), (1, created["id"])]
        assert found[-1]["position"] == created["position"]

    def test_a_list_has_an_etag_and_answers_304_to_it(self, cast: Cast) -> None:
        first = cast.owner.get(f"{cast.branch}/history", {"limit": 3})
        assert first.status_code == 200
        again = cast.owner.get(
            f"{cast.branch}/history", {"limit": 3}, If_None_Match=first.headers["ETag"]
        )
        assert again.status_code == 304

    def test_an_unknown_branch_is_not_found(self, cast: Cast) -> None:
        response = cast.owner.get(f"/worlds/{cast.world['id']}/branches/nowhere/history")
        assert_problem(response, 404)


class TestChangeLogFilters:
    def test_by_actor(self, cast: Cast) -> None:
        found = cast.history(actor=cast.users["editor"].id)
        assert [e["version"] for e in found] == [cast.versions["guard"], cast.versions["watch"]]

    def test_by_entity(self, cast: Cast) -> None:
        found = cast.history(entity_id=cast.ids["keep"])
        assert [e["type"] for e in found] == ["LocationAdded", "LocationUpdated"]

    def test_by_type(self, cast: Cast) -> None:
        found = cast.history(type="ElementRemoved")
        assert [(e["version"], e["entity_id"]) for e in found] == [
            (cast.versions["remove guard"], cast.ids["guard"])
        ]

    def test_by_recorded_at(self, cast: Cast) -> None:
        log = cast.history()
        since, until = log[2]["recorded_at"], log[5]["recorded_at"]
        found = cast.history(since=since, until=until)
        assert [e["version"] for e in found] == [2, 3, 4]

    def test_after_a_version(self, cast: Cast) -> None:
        found = cast.history(after_version=cast.versions["patch keep"])
        assert found[0]["version"] == cast.versions["patch keep"] + 1
        assert all(e["version"] > cast.versions["patch keep"] for e in found)

    def test_as_of_a_version(self, cast: Cast) -> None:
        assert [e["version"] for e in cast.history(as_of_version=2)] == [0, 1, 2]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"since": "yesterday"}, "since"),
            ({"until": "2026-13-01"}, "until"),
            ({"since": "2026-02-02T00:00:00Z", "until": "2026-02-01T00:00:00Z"}, "until"),
            ({"entity_id": "not-a-uuid"}, "entity_id"),
            ({"after_version": "-1"}, "after_version"),
            ({"after_version": str(10**30)}, "after_version"),
            ({"limit": "201"}, "limit"),
            ({"cursor": "garbage"}, "cursor"),
            ({"as_of_version": "100000"}, "as_of_version"),
        ],
    )
    def test_bad_arguments_are_refused(
        self, cast: Cast, params: dict[str, str], field: str
    ) -> None:
        assert_invalid(cast.owner.get(f"{cast.branch}/history", params), field)


class TestChangeLogPages:
    def test_pages_put_together_are_the_whole_log_and_stay_the_same(self, cast: Cast) -> None:
        whole = cast.history()
        seen: list[dict[str, Any]] = []
        cursors: list[str] = []
        cursor = None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            response = cast.owner.get(f"{cast.branch}/history", params)
            page = items(response)
            assert 0 < len(page) <= 2
            seen.extend(page)
            cursor = response.json()["next_cursor"]
            if cursor is None:
                break
            cursors.append(cursor)
        assert seen == whole
        again = cast.owner.get(f"{cast.branch}/history", {"limit": 2, "cursor": cursors[0]})
        assert items(again) == whole[2:4]


class TestEntityHistory:
    def test_a_location_created_then_patched(self, cast: Cast) -> None:
        response = cast.owner.get(
            f"{cast.branch}/locations/{cast.ids['keep']}/history", {"min_position": cast.position}
        )
        created, patched = items(response)
        assert (created["version"], created["type"]) == (cast.versions["keep"], "LocationAdded")
        assert created["changes"] == {
            "name": {"before": None, "after": "Keep"},
            "kind": {"before": None, "after": "castle"},
            "metadata": {"before": None, "after": {"walls": 2, "gate": "north"}},
        }
        assert created["correlation_id"] == "req-keep"
        assert patched["changes"] == {
            "name": {"before": "Keep", "after": "High Keep"},
            "metadata": {"before": {"walls": 2, "gate": "north"}, "after": {"walls": 3}},
        }
        assert patched["actor"] == cast.users["owner"].id

    def test_a_removed_element_ends_with_nulls(self, cast: Cast) -> None:
        found = items(cast.owner.get(f"{cast.branch}/elements/{cast.ids['guard']}/history"))
        assert [e["type"] for e in found] == ["ElementAdded", "ElementRemoved"]
        assert found[-1]["changes"]["name"] == {"before": "Guard", "after": None}
        assert found[0]["actor"] == cast.users["editor"].id

    def test_timeline_events_have_history_too(self, cast: Cast) -> None:
        found = items(cast.owner.get(f"{cast.branch}/timeline-events/{cast.ids['watch']}/history"))
        assert found[0]["changes"]["start"] == {"before": None, "after": {"year": 12}}

    def test_is_paginated(self, cast: Cast) -> None:
        path = f"{cast.branch}/locations/{cast.ids['keep']}/history"
        first = cast.owner.get(path, {"limit": 1})
        second = cast.owner.get(path, {"limit": 1, "cursor": first.json()["next_cursor"]})
        assert [e["type"] for e in items(first) + items(second)] == [
            "LocationAdded",
            "LocationUpdated",
        ]
        assert second.json()["next_cursor"] is None
        assert items(second)[0]["changes"]["name"]["before"] == "Keep"
        change_log_cursor = cast.owner.get(f"{cast.branch}/history", {"limit": 1})
        foreign = change_log_cursor.json()["next_cursor"]
        assert_invalid(cast.owner.get(path, {"cursor": foreign}), "cursor")

    def test_an_unknown_entity_or_the_wrong_collection_is_not_found(self, cast: Cast) -> None:
        unknown = "00000000-0000-4000-8000-000000000000"
        assert_problem(cast.owner.get(f"{cast.branch}/locations/{unknown}/history"), 404)
        assert_problem(cast.owner.get(f"{cast.branch}/elements/{cast.ids['keep']}/history"), 404)
        assert_problem(cast.owner.get(f"{cast.branch}/planets/{unknown}/history"), 404)


class TestWhoMayReadAndVerify:
    @pytest.mark.parametrize("role", ["owner", "editor", "viewer", "auditor"])
    def test_every_member_reads_history(self, cast: Cast, role: str) -> None:
        assert cast.history(role)
        path = f"{cast.branch}/locations/{cast.ids['keep']}/history"
        assert items(cast.clients[role].get(path))

    @pytest.mark.parametrize("role", ["owner", "auditor"])
    def test_owners_and_auditors_verify(self, cast: Cast, role: str) -> None:
        response = cast.clients[role].get(f"{cast.branch}/verify")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["valid"] is True
        assert body["first_invalid_version"] is None
        assert body["checked"] == len(cast.history())
        assert body["world_valid"] is True

    @pytest.mark.parametrize("role", ["editor", "viewer"])
    def test_editors_and_viewers_may_not_verify(self, cast: Cast, role: str) -> None:
        assert_problem(cast.clients[role].get(f"{cast.branch}/verify"), 403)

    def test_a_stranger_finds_nothing(self, cast: Cast) -> None:
        stranger = cast.clients["stranger"]
        for path in ("history", "verify", f"locations/{cast.ids['keep']}/history"):
            assert_problem(stranger.get(f"{cast.branch}/{path}"), 404)

    def test_without_a_token_it_is_unauthorized(self, server: Server, cast: Cast) -> None:
        anonymous = Client(server, None)
        for path in ("history", "verify"):
            assert_problem(anonymous.get(f"{cast.branch}/{path}"), 401)

    def test_verifying_an_unknown_branch_is_not_found(self, cast: Cast) -> None:
        assert_problem(cast.owner.get(f"/worlds/{cast.world['id']}/branches/nowhere/verify"), 404)


# -- tamper evidence ----------------------------------------------------------------------


def tamper(server: Server, stream_id: UUID, stream_version: int, old: str, new: str) -> None:
    """Rewrite text inside one stored event's state, as someone with database access could."""
    engine = create_engine(server.database_url)
    try:
        with engine.begin() as conn:
            changed = conn.execute(
                text(
                    "UPDATE pearl_events SET state = convert_to(replace(convert_from(state, "
                    "'UTF8'), :old, :new), 'UTF8') WHERE originator_id = :stream "
                    "AND originator_version = :version AND position(:old in convert_from(state, "
                    "'UTF8')) > 0"
                ),
                {"old": old, "new": new, "stream": stream_id, "version": stream_version},
            )
            assert changed.rowcount == 1
    finally:
        engine.dispose()


def stream_of(world: dict[str, Any], branch: str) -> UUID:
    return uuid5(UUID(world["id"]), f"branch:{branch}")


class TestTamperEvidence:
    def test_an_edited_event_row_is_found_at_its_version(self, server: Server, owner: User) -> None:
        client = Client(server, owner)
        world = client.create("/worlds", {"name": "Tampered world"})
        branch = branch_path(world)
        client.create(f"{branch}/timelines", {"name": "Ages"})
        keep = client.create(f"{branch}/locations", {"name": "Old Keep", "kind": "castle"})
        client.create(f"{branch}/elements", {"name": "Old Guard", "kind": "character"})
        before = client.get(f"{branch}/verify")
        assert before.status_code == 200, before.text
        assert before.json() == {
            "valid": True,
            "checked": 4,
            "first_invalid_version": None,
            "world_valid": True,
            "world_checked": 2,
        }

        tamper(server, stream_of(world, "main"), keep["version"] + 1, "Old", "Odd")

        after = client.get(f"{branch}/verify")
        assert after.status_code == 200, after.text
        assert after.json()["valid"] is False
        assert after.json()["first_invalid_version"] == keep["version"] == 2
        assert after.json()["checked"] == 4
        assert after.json()["world_valid"] is True

    def test_an_edited_world_event_is_reported_apart_from_the_branch(
        self, server: Server, owner: User
    ) -> None:
        client = Client(server, owner)
        world = client.create("/worlds", {"name": "Old name"})
        tamper(server, UUID(world["id"]), 1, "Old", "Odd")
        body = client.get(f"{branch_path(world)}/verify").json()
        assert (body["valid"], body["world_valid"]) == (True, False)


class TestForks:
    def test_a_forks_history_has_its_parents_changes_up_to_the_fork_point_only(
        self, server: Server, owner: User
    ) -> None:
        client = Client(server, owner)
        world = client.create("/worlds", {"name": "Forked world"})
        main = branch_path(world)
        client.create(f"{main}/timelines", {"name": "Old Age"})
        keep = client.create(f"{main}/locations", {"name": "Keep", "kind": "castle"})
        forked = client.post(
            f"/worlds/{world['id']}/branches", {"name": "what-if", "from": "main", "at_version": 2}
        )
        assert forked.status_code == 201, forked.text
        client.create(f"{main}/elements", {"name": "Main only", "kind": "character"})
        alt = branch_path(world, "what-if")
        renamed = client.patch(f"{alt}/locations/{keep['id']}", {"name": "Fort"})
        assert renamed.status_code == 200, renamed.text
        position = renamed.json()["position"]

        log = items(client.get(f"{alt}/history", {"min_position": position}))
        assert [(e["version"], e["type"], e["branch"]) for e in log] == [
            (0, "BranchStarted", "main"),
            (1, "TimelineAdded", "main"),
            (2, "LocationAdded", "main"),
            (3, "LocationUpdated", "what-if"),
        ]
        keep_history = items(client.get(f"{alt}/locations/{keep['id']}/history"))
        assert [e["changes"].get("name") for e in keep_history] == [
            {"before": None, "after": "Keep"},
            {"before": "Keep", "after": "Fort"},
        ]

        verified = client.get(f"{alt}/verify").json()
        # main's versions 0..2, the fork's first event at 2, then its version 3
        assert (verified["valid"], verified["checked"]) == (True, 5)

        tamper(server, stream_of(world, "main"), 2, "Old", "Odd")  # main's version 1
        assert client.get(f"{alt}/verify").json()["first_invalid_version"] == 1
        assert client.get(f"{main}/verify").json()["first_invalid_version"] == 1
