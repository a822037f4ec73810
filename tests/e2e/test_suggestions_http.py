"""AI suggestions over real HTTP: the session server runs the suggestion worker with the
offline provider, so link-mentions proposals are real and deterministic."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Server, User

TIMEOUT = 10
SETTLE_TIMEOUT = 30.0


@dataclass
class Scene:
    """A fresh world: Ada Quill, the city of Karsa, and events that name them unlinked."""

    server: Server
    owner: User
    viewer: User
    world_id: str
    ids: dict[str, str]
    position: int

    @property
    def branch(self) -> str:
        return f"{self.server.api}/worlds/{self.world_id}/branches/main"

    def call(
        self, method: str, url: str, body: Any = None, as_user: User | None = None, **params: Any
    ) -> requests.Response:
        user = as_user or self.owner
        return requests.request(
            method, url, json=body, params=params, headers=user.auth, timeout=TIMEOUT
        )

    def add(self, collection: str, fields: dict[str, Any]) -> dict[str, Any]:
        response = self.call("POST", f"{self.branch}/{collection}", fields)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        self.position = max(self.position, int(created["position"]))
        return created

    def suggest(self, body: dict[str, Any], as_user: User | None = None) -> requests.Response:
        return self.call("POST", f"{self.branch}/suggestions", body, as_user)

    def proposal_url(self, proposal_id: str) -> str:
        return f"{self.server.api}/worlds/{self.world_id}/proposals/{proposal_id}"

    def settled(self, proposal_id: str, min_position: int = 0) -> dict[str, Any]:
        """GET the proposal (read as of `min_position` or later) until it is not pending."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            response = self.call("GET", self.proposal_url(proposal_id), min_position=min_position)
            assert response.status_code == 200, response.text
            found: dict[str, Any] = response.json()
            if found["status"] != "pending":
                return found
            assert time.monotonic() < deadline, f"proposal still pending: {found}"
            time.sleep(0.1)

    def ready_proposal(self, kind: str = "link-mentions") -> dict[str, Any]:
        response = self.suggest({"kind": kind})
        assert response.status_code == 202, response.text
        proposal = self.settled(response.json()["id"], response.json()["position"])
        assert proposal["status"] == "ready", proposal
        return proposal

    def review(
        self, proposal_id: str, verb: str, body: dict[str, Any], as_user: User | None = None
    ) -> requests.Response:
        return self.call("POST", f"{self.proposal_url(proposal_id)}/{verb}", body, as_user)

    def event(self, event_id: str, min_position: int) -> dict[str, Any]:
        response = self.call(
            "GET", f"{self.branch}/timeline-events/{event_id}", min_position=min_position
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def head_version(self) -> int:
        response = self.call("GET", self.branch, min_position=self.position)
        assert response.status_code == 200, response.text
        return int(response.json()["head_version"])


@pytest.fixture
def scene(server: Server, register: Callable[[], User]) -> Scene:
    owner, viewer = register(), register()
    created = requests.post(
        f"{server.api}/worlds", json={"name": "Aerth"}, headers=owner.auth, timeout=TIMEOUT
    )
    assert created.status_code == 201, created.text
    world_id = created.json()["id"]
    added = requests.put(
        f"{server.api}/worlds/{world_id}/members/{viewer.id}",
        json={"role": "viewer"},
        headers=owner.auth,
        timeout=TIMEOUT,
    )
    assert added.status_code == 200, added.text
    scene = Scene(server, owner, viewer, world_id, {}, int(created.json()["position"]))
    scene.ids["ada"] = scene.add("elements", {"kind": "character", "name": "Ada Quill"})["id"]
    scene.ids["bram"] = scene.add("elements", {"kind": "character", "name": "Bram"})["id"]
    scene.ids["reigns"] = scene.add("timelines", {"name": "Reigns"})["id"]
    crowning = {
        "timeline_id": scene.ids["reigns"],
        "title": "Ada Quill is crowned",
        "start": {"year": 412, "month": 3},
    }
    scene.ids["crowning"] = scene.add("timeline-events", crowning)["id"]
    return scene


def add_second_event(scene: Scene) -> str:
    """An event later in the world's time that names Bram: a second edit in the proposal."""
    exile = {"timeline_id": scene.ids["reigns"], "title": "Bram's exile", "start": {"year": 420}}
    scene.ids["exile"] = scene.add("timeline-events", exile)["id"]
    return scene.ids["exile"]


class TestRequestingASuggestion:
    def test_is_accepted_for_later_with_the_proposal_url(self, scene: Scene) -> None:
        response = scene.suggest({"kind": "link-mentions"})
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["kind"] == "link-mentions"
        assert body["status"] == "pending"
        assert body["url"] == f"/api/v1/worlds/{scene.world_id}/proposals/{body['id']}"
        assert isinstance(body["position"], int)

    def test_the_proposal_becomes_ready_with_an_edit_linking_the_named_element(
        self, scene: Scene
    ) -> None:
        proposal = scene.ready_proposal()
        assert proposal["provider"] == "offline"
        assert proposal["dropped"] == []
        assert [(e["command"], e["target"], e["body"]) for e in proposal["edits"]] == [
            (
                "update",
                f"timeline-events/{scene.ids['crowning']}",
                {"element_ids": [scene.ids["ada"]]},
            )
        ]

    def test_an_unknown_kind_is_refused(self, scene: Scene) -> None:
        response = scene.suggest({"kind": "summarise"})
        assert response.status_code == 422, response.text
        assert "kind" in response.json()["errors"]

    def test_a_viewer_may_not_ask(self, scene: Scene) -> None:
        response = scene.suggest({"kind": "link-mentions"}, as_user=scene.viewer)
        assert response.status_code == 403, response.text

    def test_expand_without_a_language_model_fails_with_that_reason(self, scene: Scene) -> None:
        response = scene.suggest({"kind": "expand", "prompt": "the years before the crowning"})
        assert response.status_code == 202, response.text
        proposal = scene.settled(response.json()["id"], response.json()["position"])
        assert proposal["status"] == "failed"
        assert "needs a language model" in proposal["reason"]


class TestAcceptingAProposal:
    def test_accepting_all_links_the_element(self, scene: Scene) -> None:
        proposal = scene.ready_proposal()
        response = scene.review(proposal["id"], "accept", {})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "accepted"
        event = scene.event(scene.ids["crowning"], response.json()["position"])
        assert event["element_ids"] == [scene.ids["ada"]]

    def test_the_accepted_changes_are_caused_by_the_proposal(self, scene: Scene) -> None:
        proposal = scene.ready_proposal()
        accepted = scene.review(proposal["id"], "accept", {})
        assert accepted.status_code == 200, accepted.text
        response = scene.call(
            "GET",
            f"{scene.branch}/history",
            entity_id=scene.ids["crowning"],
            min_position=accepted.json()["position"],
        )
        assert response.status_code == 200, response.text
        changes = response.json()["items"]
        assert [c["type"] for c in changes] == ["TimelineEventAdded", "ElementsLinked"]
        added, linked = changes
        assert added["causation_id"] is None
        assert linked["causation_id"] == proposal["id"]
        assert linked["actor"] == scene.owner.id

    def test_accepting_some_edits_applies_only_those(self, scene: Scene) -> None:
        exile = add_second_event(scene)
        proposal = scene.ready_proposal()
        targets = [e["target"] for e in proposal["edits"]]
        assert targets == [
            f"timeline-events/{scene.ids['crowning']}",
            f"timeline-events/{exile}",
        ]
        response = scene.review(proposal["id"], "accept", {"indexes": [1]})
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == [1]
        position = response.json()["position"]
        assert scene.event(exile, position)["element_ids"] == [scene.ids["bram"]]
        assert scene.event(scene.ids["crowning"], position)["element_ids"] == []

    def test_accepting_twice_is_a_conflict(self, scene: Scene) -> None:
        proposal = scene.ready_proposal()
        assert scene.review(proposal["id"], "accept", {}).status_code == 200
        again = scene.review(proposal["id"], "accept", {})
        assert again.status_code == 409, again.text

    def test_a_stale_proposal_is_refused_and_nothing_is_appended(self, scene: Scene) -> None:
        exile = add_second_event(scene)
        proposal = scene.ready_proposal()
        removed = scene.call("DELETE", f"{scene.branch}/timeline-events/{exile}")
        assert removed.status_code == 200, removed.text
        scene.position = int(removed.json()["position"])
        head = scene.head_version()
        response = scene.review(proposal["id"], "accept", {})
        assert response.status_code == 409, response.text
        problem = response.json()
        assert [c["index"] for c in problem["conflicts"]] == [1]
        assert exile in problem["conflicts"][0]["reason"]
        assert scene.head_version() == head
        assert scene.event(scene.ids["crowning"], scene.position)["element_ids"] == []
        assert scene.settled(proposal["id"])["status"] == "ready"

    def test_a_viewer_may_not_accept(self, scene: Scene) -> None:
        proposal = scene.ready_proposal()
        response = scene.review(proposal["id"], "accept", {}, as_user=scene.viewer)
        assert response.status_code == 403, response.text
        assert scene.settled(proposal["id"])["status"] == "ready"


class TestRejectingAProposal:
    def test_rejecting_with_a_reason_closes_it(self, scene: Scene) -> None:
        proposal = scene.ready_proposal()
        response = scene.review(proposal["id"], "reject", {"reason": "Ada was never crowned"})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "rejected"
        found = scene.call(
            "GET", scene.proposal_url(proposal["id"]), min_position=response.json()["position"]
        ).json()
        assert found["status"] == "rejected"
        assert found["reason"] == "Ada was never crowned"
        assert found["reviewed_by"] == scene.owner.id
        assert scene.review(proposal["id"], "accept", {}).status_code == 409
