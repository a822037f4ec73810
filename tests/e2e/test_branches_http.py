"""Branches over real HTTP: fork, list, compare, merge (dry run and conflicts), revert, roles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Server, User
from tests.e2e.support import (
    Client,
    assert_invalid,
    assert_problem,
    branch_path,
    items,
    media_type,
)


@dataclass
class Site:
    """A world whose `main` has Keep (v1), renamed High keep (v2), Guard (v3), Watches (v4)."""

    server: Server
    client: Client
    world: dict[str, Any]
    ids: dict[str, str] = field(default_factory=dict)
    position: int = 0

    @property
    def world_path(self) -> str:
        return f"/worlds/{self.world['id']}"

    def branch(self, name: str = "main") -> str:
        return branch_path(self.world, name)

    def wrote(self, response: requests.Response, status: int = 200) -> dict[str, Any]:
        """A command's response with `status`; remembers its position for later reads."""
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        if body.get("position") is not None:
            self.position = max(self.position, int(body["position"]))
        return body

    def add(self, branch: str, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.wrote(self.client.post(f"{self.branch(branch)}/{collection}", body), 201)

    def patch(self, branch: str, collection: str, key: str, body: dict[str, Any]) -> int:
        path = f"{self.branch(branch)}/{collection}/{self.ids[key]}"
        return int(self.wrote(self.client.patch(path, body))["version"])

    def fork(self, name: str, **body: Any) -> requests.Response:
        return self.client.post(f"{self.world_path}/branches", {"name": name, **body})

    def merge(self, target: str, body: dict[str, Any]) -> requests.Response:
        return self.client.post(f"{self.branch(target)}/merge", body)

    def revert(self, branch: str, body: dict[str, Any]) -> requests.Response:
        return self.client.post(f"{self.branch(branch)}/revert", body)

    def compare(self, base: str, head: str, client: Client | None = None) -> requests.Response:
        return (client or self.client).get(
            f"{self.world_path}/compare", {"base": base, "head": head}
        )

    def read(self, branch: str, collection: str, key: str, **params: Any) -> requests.Response:
        return self.client.get(
            f"{self.branch(branch)}/{collection}/{self.ids[key]}",
            {"min_position": self.position, **params},
        )

    def listing(self, branch: str, collection: str, **params: Any) -> list[dict[str, Any]]:
        found = items(
            self.client.get(
                f"{self.branch(branch)}/{collection}",
                {"min_position": self.position, "limit": 200, **params},
            )
        )
        return found

    def everything(self, branch: str, **params: Any) -> dict[str, list[dict[str, Any]]]:
        """Every entity of every collection, without its `version`."""
        return {
            collection: [
                {k: v for k, v in entity.items() if k != "version"}
                for entity in self.listing(branch, collection, **params)
            ]
            for collection in ("locations", "elements", "timelines", "timeline-events")
        }


def changes_by_id(comparison: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["entity_id"]: c for c in comparison["changes"]}


@pytest.fixture
def site(server: Server, owner: User, world: dict[str, Any]) -> Site:
    made = Site(server, Client(server, owner), world)
    keep = made.add(
        "main", "locations", {"name": "Keep", "kind": "castle", "metadata": {"walls": 2}}
    )
    made.ids["keep"] = keep["id"]
    assert made.patch("main", "locations", "keep", {"name": "High keep"}) == 2
    guard = made.add("main", "elements", {"name": "Guard", "kind": "character", "tags": ["night"]})
    made.ids["guard"] = guard["id"]
    watches = made.add("main", "timelines", {"name": "Watches"})
    made.ids["watches"] = watches["id"]
    assert watches["version"] == 4
    return made


@pytest.fixture
def forked(site: Site) -> Site:
    """`alt` forked from main at version 3 (before the timeline)."""
    site.wrote(site.fork("alt", **{"from": "main", "at_version": 3}), 201)
    return site


class TestForking:
    def test_a_fork_at_a_version_answers_201_with_where_it_starts(self, site: Site) -> None:
        response = site.fork("alt", **{"from": "main", "at_version": 3})
        assert response.status_code == 201, response.text
        assert response.headers["Location"].endswith(f"/api/v1{site.world_path}/branches/alt")
        body = response.json()
        assert body["name"] == "alt"
        assert body["head_version"] == 3
        assert body["forked_from"] == {"branch": "main", "version": 3}
        assert isinstance(body["position"], int)

    def test_without_a_version_the_fork_starts_at_the_head_of_main(self, site: Site) -> None:
        body = site.wrote(site.fork("alt"), 201)
        assert body["head_version"] == 4
        assert body["forked_from"] == {"branch": "main", "version": 4}

    def test_the_branches_are_listed_and_readable_by_name(self, forked: Site) -> None:
        listed = forked.client.get(
            f"{forked.world_path}/branches", {"min_position": forked.position}
        )
        assert listed.status_code == 200, listed.text
        by_name = {b["name"]: b for b in listed.json()["items"]}
        assert set(by_name) == {"main", "alt"}
        assert (by_name["main"]["head_version"], by_name["main"]["forked_from"]) == (4, None)
        assert by_name["alt"]["head_version"] == 3
        assert by_name["alt"]["forked_from"] == {"branch": "main", "version": 3}

        one = forked.client.get(
            f"{forked.world_path}/branches/alt", {"min_position": forked.position}
        )
        assert one.status_code == 200, one.text
        assert one.json()["name"] == "alt"
        assert one.json()["head_version"] == 3
        assert one.json()["forked_from"] == {"branch": "main", "version": 3}

    def test_an_unknown_branch_is_not_found(self, site: Site) -> None:
        assert_problem(site.client.get(f"{site.world_path}/branches/nope"), 404)

    def test_the_fork_reads_as_main_stood_at_the_fork_point(self, forked: Site) -> None:
        assert forked.listing("alt", "timelines") == []
        assert [e["name"] for e in forked.listing("alt", "elements")] == ["Guard"]
        keep = forked.read("alt", "locations", "keep")
        assert keep.status_code == 200, keep.text
        assert keep.json()["name"] == "High keep"

    def test_the_forks_first_own_event_is_its_fork_version_plus_one(self, forked: Site) -> None:
        assert forked.patch("alt", "locations", "keep", {"name": "Alt keep"}) == 4
        branch = forked.client.get(
            f"{forked.world_path}/branches/alt", {"min_position": forked.position}
        )
        assert branch.json()["head_version"] == 4
        assert forked.read("main", "locations", "keep").json()["name"] == "High keep"

    def test_as_of_a_version_below_the_fork_point_the_fork_answers_the_parents_state(
        self, forked: Site
    ) -> None:
        forked.patch("main", "locations", "keep", {"name": "Main keep"})  # main v5
        forked.patch("alt", "locations", "keep", {"name": "Alt keep"})  # alt v4
        first = forked.read("alt", "locations", "keep", as_of_version=1)
        assert first.status_code == 200, first.text
        assert first.json()["name"] == "Keep"
        assert forked.read("alt", "locations", "keep", as_of_version=2).json()["name"] == (
            "High keep"
        )
        assert_problem(forked.read("alt", "elements", "guard", as_of_version=2), 404)
        assert forked.read("alt", "locations", "keep").json()["name"] == "Alt keep"
        assert_invalid(forked.read("alt", "locations", "keep", as_of_version=5), "as_of_version")


class TestForkRefusals:
    @pytest.mark.parametrize("name", ["has space", "-dash", "slash/y", "é", "", "x" * 101])
    def test_a_bad_name_is_invalid(self, site: Site, name: str) -> None:
        before = site.server.event_count()
        assert_invalid(site.fork(name), "name")
        assert site.server.event_count() == before

    def test_an_unknown_field_is_invalid(self, site: Site) -> None:
        assert_invalid(site.fork("alt", at=2), "at")

    @pytest.mark.parametrize("at_version", [5, -1, "2"])
    def test_a_version_outside_the_branch_is_invalid(self, site: Site, at_version: Any) -> None:
        assert_invalid(site.fork("alt", at_version=at_version), "at_version")

    def test_an_unknown_source_branch_is_invalid(self, site: Site) -> None:
        assert_invalid(site.fork("alt", **{"from": "nope"}), "from")

    def test_a_taken_name_is_a_conflict(self, forked: Site) -> None:
        before = forked.server.event_count()
        assert_problem(forked.fork("alt"), 409)
        assert_problem(forked.fork("main"), 409)
        assert forked.server.event_count() == before


@pytest.fixture
def diverged(forked: Site) -> Site:
    """After the fork: main renames Keep; alt changes Keep's kind and metadata and adds Spy."""
    forked.patch("main", "locations", "keep", {"name": "Main keep"})  # main v5
    forked.patch("alt", "locations", "keep", {"kind": "fortress", "metadata": {"gate": "n"}})
    spy = forked.add("alt", "elements", {"name": "Spy", "kind": "character"})  # alt v5
    forked.ids["spy"] = spy["id"]
    return forked


class TestComparing:
    def test_lists_what_differs_field_by_field(self, diverged: Site) -> None:
        response = diverged.compare("main", "alt")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["base"] == "main@5"
        assert body["head"] == "alt@5"
        assert body["ancestor"] == {"branch": "main", "version": 3}
        changes = changes_by_id(body)
        assert set(changes) == {diverged.ids[k] for k in ("keep", "spy", "watches")}
        keep = changes[diverged.ids["keep"]]
        assert keep["collection"] == "locations"
        assert keep["change"] == "modified"
        assert keep["fields"] == {
            "name": {"base": "Main keep", "head": "High keep"},
            "kind": {"base": "castle", "head": "fortress"},
            "metadata": {"base": {"walls": 2}, "head": {"walls": 2, "gate": "n"}},
        }
        spy = changes[diverged.ids["spy"]]
        assert (spy["collection"], spy["change"]) == ("elements", "added")
        assert spy["fields"]["name"] == {"base": None, "head": "Spy"}
        watches = changes[diverged.ids["watches"]]
        assert (watches["collection"], watches["change"]) == ("timelines", "removed")

    def test_accepts_versions_in_the_refs(self, diverged: Site) -> None:
        response = diverged.compare("alt@3", "alt")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["base"], body["head"]) == ("alt@3", "alt@5")
        assert set(changes_by_id(body)) == {diverged.ids["keep"], diverged.ids["spy"]}
        older = diverged.compare("main@1", "main@2").json()
        assert older["changes"] == [
            {
                "entity_id": diverged.ids["keep"],
                "collection": "locations",
                "change": "modified",
                "fields": {"name": {"base": "Keep", "head": "High keep"}},
            }
        ]

    @pytest.mark.parametrize(
        ("base", "head"), [("nope", "main"), ("main@99", "main"), ("main@x", "main")]
    )
    def test_unknown_branches_and_versions_are_invalid(
        self, site: Site, base: str, head: str
    ) -> None:
        assert_problem(site.compare(base, head), 422)

    def test_both_refs_are_required(self, site: Site) -> None:
        response = site.client.get(f"{site.world_path}/compare", {"base": "main"})
        assert_invalid(response, "head")


class TestMerging:
    def test_a_dry_run_answers_the_edits_and_appends_nothing(self, diverged: Site) -> None:
        before = diverged.server.event_count()
        response = diverged.merge("main", {"source": "alt", "dry_run": True})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["dry_run"] is True
        assert sorted((e["entity_id"], e["change"]) for e in body["edits"]) == sorted(
            [(diverged.ids["keep"], "modified"), (diverged.ids["spy"], "added")]
        )
        assert diverged.server.event_count() == before
        assert diverged.read("main", "locations", "keep").json()["kind"] == "castle"

    def test_a_merge_applies_the_changes_and_main_reads_them(self, diverged: Site) -> None:
        before = diverged.server.event_count()
        body = diverged.wrote(diverged.merge("main", {"source": "alt"}))
        assert (body["target"], body["source"], body["dry_run"]) == ("main", "alt", False)
        assert body["ancestor"] == {"branch": "main", "version": 3}
        assert body["events"] == 2
        assert body["head_version"] == 5 + 2 + 1  # two edits and the merge marker
        assert diverged.server.event_count() == before + 3
        keep = diverged.read("main", "locations", "keep").json()
        assert (keep["name"], keep["kind"], keep["metadata"]) == (
            "Main keep",
            "fortress",
            {"walls": 2, "gate": "n"},
        )
        spy = diverged.read("main", "elements", "spy")
        assert spy.status_code == 200, spy.text
        assert spy.json()["name"] == "Spy"
        branch = diverged.client.get(
            f"{diverged.world_path}/branches/main", {"min_position": diverged.position}
        )
        assert branch.json()["head_version"] == body["head_version"]
        remaining = changes_by_id(diverged.compare("main", "alt").json())
        assert set(remaining) == {diverged.ids["keep"], diverged.ids["watches"]}
        assert remaining[diverged.ids["keep"]]["fields"] == {
            "name": {"base": "Main keep", "head": "High keep"}
        }

    def test_conflicting_edits_answer_409_with_every_conflict_and_append_nothing(
        self, diverged: Site
    ) -> None:
        diverged.patch("alt", "locations", "keep", {"name": "Alt keep"})
        diverged.patch("main", "locations", "keep", {"metadata": {"gate": "s"}})
        before = diverged.server.event_count()
        response = diverged.merge("main", {"source": "alt"})
        body = assert_problem(response, 409)
        assert media_type(response) == "application/problem+json"
        conflicts = {c["field"]: c for c in body["conflicts"]}
        assert set(conflicts) == {"name", "metadata.gate"}
        assert {k: conflicts["name"][k] for k in ("entity_id", "base", "ours", "theirs")} == {
            "entity_id": diverged.ids["keep"],
            "base": "High keep",
            "ours": "Main keep",
            "theirs": "Alt keep",
        }
        assert (
            conflicts["metadata.gate"]["base"],
            conflicts["metadata.gate"]["ours"],
            conflicts["metadata.gate"]["theirs"],
        ) == (None, "s", "n")
        assert diverged.server.event_count() == before
        assert_problem(diverged.read("main", "elements", "spy"), 404)

    def test_a_merge_that_would_break_an_invariant_answers_409(self, diverged: Site) -> None:
        age = diverged.add("alt", "timelines", {"name": "Alt age"})
        diverged.add(
            "alt",
            "timeline-events",
            {
                "timeline_id": age["id"],
                "title": "Ambush",
                "start": {"year": 3},
                "element_ids": [diverged.ids["guard"]],
            },
        )
        removed = diverged.client.delete(f"{diverged.branch()}/elements/{diverged.ids['guard']}")
        diverged.wrote(removed)
        before = diverged.server.event_count()
        assert_problem(diverged.merge("main", {"source": "alt"}), 409)
        assert diverged.server.event_count() == before

    def test_merging_a_branch_into_itself_is_invalid(self, forked: Site) -> None:
        assert_invalid(forked.merge("alt", {"source": "alt"}), "source")

    def test_an_unknown_source_is_invalid(self, forked: Site) -> None:
        assert_invalid(forked.merge("main", {"source": "nope"}), "source")

    def test_a_missing_source_or_an_unknown_field_is_invalid(self, forked: Site) -> None:
        assert_invalid(forked.merge("main", {}), "source")
        assert_invalid(forked.merge("main", {"source": "alt", "force": True}), "force")


class TestReverting:
    def test_the_branch_reads_as_it_stood_at_that_version(self, site: Site) -> None:
        then = site.everything("main", as_of_version=2)
        site.patch("main", "locations", "keep", {"name": "Ruin", "metadata": {"walls": 0}})
        site.add(
            "main", "locations", {"name": "Tower", "kind": "tower", "parent_id": site.ids["keep"]}
        )
        site.wrote(site.client.delete(f"{site.branch()}/elements/{site.ids['guard']}"))
        before = site.server.event_count()
        body = site.wrote(site.revert("main", {"to_version": 2}))
        assert body["name"] == "main"
        assert body["reverted_to"] == 2
        assert body["events"] >= 3
        assert body["head_version"] == 7 + body["events"] + 1
        assert site.server.event_count() == before + body["events"] + 1
        assert site.everything("main") == then
        assert site.compare("main@2", "main").json()["changes"] == []
        history = site.client.get(
            f"{site.branch()}/history", {"min_position": site.position, "limit": 200}
        )
        log = items(history)
        assert [e["version"] for e in log] == list(range(body["head_version"] + 1))
        assert log[-1]["type"] == "BranchReverted"

    def test_earlier_versions_still_read_as_they_were(self, site: Site) -> None:
        site.patch("main", "locations", "keep", {"name": "Ruin"})  # v5
        site.wrote(site.revert("main", {"to_version": 4}))
        assert site.read("main", "locations", "keep").json()["name"] == "High keep"
        assert site.read("main", "locations", "keep", as_of_version=5).json()["name"] == "Ruin"

    def test_reverting_to_the_head_appends_nothing(self, site: Site) -> None:
        before = site.server.event_count()
        body = site.wrote(site.revert("main", {"to_version": 4}))
        assert (body["events"], body["head_version"]) == (0, 4)
        assert site.server.event_count() == before

    def test_a_fork_reverted_below_its_fork_point_reads_as_its_parent_stood(
        self, forked: Site
    ) -> None:
        forked.patch("alt", "locations", "keep", {"name": "Alt keep"})
        then = forked.everything("main", as_of_version=1)
        forked.wrote(forked.revert("alt", {"to_version": 1}))
        assert forked.everything("alt") == then

    @pytest.mark.parametrize("to_version", [-1, 5, "2", None])
    def test_a_version_outside_the_branch_is_invalid(self, site: Site, to_version: Any) -> None:
        before = site.server.event_count()
        assert_invalid(site.revert("main", {"to_version": to_version}), "to_version")
        assert site.server.event_count() == before

    def test_a_missing_version_or_an_unknown_field_is_invalid(self, site: Site) -> None:
        assert_invalid(site.revert("main", {}), "to_version")
        assert_invalid(site.revert("main", {"to_version": 1, "hard": True}), "hard")


@dataclass
class Crew:
    site: Site
    clients: dict[str, Client]


@pytest.fixture
def crew(forked: Site, register: Callable[[], User]) -> Crew:
    users = {role: register() for role in ("editor", "viewer", "stranger")}
    for role in ("editor", "viewer"):
        added = forked.client.put(f"{forked.world_path}/members/{users[role].id}", {"role": role})
        assert added.status_code == 200, added.text
    return Crew(forked, {role: Client(forked.server, user) for role, user in users.items()})


class TestRoles:
    def test_a_viewer_may_compare_and_list_but_not_fork_merge_or_revert(self, crew: Crew) -> None:
        viewer, site = crew.clients["viewer"], crew.site
        assert site.compare("main", "alt", viewer).status_code == 200
        assert viewer.get(f"{site.world_path}/branches").status_code == 200
        before = site.server.event_count()
        assert_problem(viewer.post(f"{site.world_path}/branches", {"name": "mine"}), 403)
        assert_problem(viewer.post(f"{site.branch()}/merge", {"source": "alt"}), 403)
        assert_problem(viewer.post(f"{site.branch()}/revert", {"to_version": 1}), 403)
        assert site.server.event_count() == before

    def test_an_editor_may_fork_merge_and_revert(self, crew: Crew) -> None:
        editor, site = crew.clients["editor"], crew.site
        assert editor.post(f"{site.world_path}/branches", {"name": "mine"}).status_code == 201
        assert editor.post(f"{site.branch()}/merge", {"source": "alt"}).status_code == 200
        assert editor.post(f"{site.branch('alt')}/revert", {"to_version": 1}).status_code == 200

    def test_a_stranger_finds_nothing(self, crew: Crew) -> None:
        stranger, site = crew.clients["stranger"], crew.site
        before = site.server.event_count()
        assert_problem(site.compare("main", "alt", stranger), 404)
        assert_problem(stranger.get(f"{site.world_path}/branches"), 404)
        assert_problem(stranger.get(f"{site.world_path}/branches/alt"), 404)
        assert_problem(stranger.post(f"{site.world_path}/branches", {"name": "mine"}), 404)
        assert_problem(stranger.post(f"{site.branch()}/merge", {"source": "alt"}), 404)
        assert_problem(stranger.post(f"{site.branch()}/revert", {"to_version": 1}), 404)
        assert site.server.event_count() == before
