"""A client with only the README and /openapi.json builds a small world over real HTTP."""

from __future__ import annotations

from typing import Any

import requests

from tests.e2e.conftest import Server, User


class TestBuildingAWorld:
    def test_builds_a_location_tree_elements_and_a_timeline(
        self, server: Server, owner: User, branch_url: str
    ) -> None:
        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = requests.post(
                f"{branch_url}/{path}", json=body, headers=owner.auth, timeout=10
            )
            assert response.status_code == 201, response.text
            assert response.headers["Location"].endswith(response.json()["id"])
            assert response.headers["X-Position"] == str(response.json()["position"])
            return dict(response.json())

        before = server.event_count()
        continent = post("locations", {"name": "Middle-earth", "kind": "continent"})
        shire = post(
            "locations", {"name": "The Shire", "kind": "region", "parent_id": continent["id"]}
        )
        frodo = post("elements", {"kind": "character", "name": "Frodo", "tags": ["hobbit"]})
        age = post("timelines", {"name": "Third Age"})
        party = post(
            "timeline-events",
            {
                "timeline_id": age["id"],
                "title": "Long-expected Party",
                "start": {"year": 3001, "month": 9, "day": 22},
                "location_id": shire["id"],
                "element_ids": [frodo["id"]],
            },
        )
        assert server.event_count() == before + 5
        assert [continent["version"], shire["version"], party["version"]] == [1, 2, 5]

        edited = requests.patch(
            f"{branch_url}/elements/{frodo['id']}",
            json={"summary": "Ring-bearer"},
            headers={**owner.auth, "If-Match": f'"{frodo["version"]}"'},
            timeout=10,
        )
        assert edited.status_code == 200, edited.text
        assert edited.headers["ETag"] == '"6"'
        stale = requests.patch(
            f"{branch_url}/elements/{frodo['id']}",
            json={"summary": "Ring-bearer"},
            headers={**owner.auth, "If-Match": f'"{frodo["version"]}"'},
            timeout=10,
        )
        assert stale.status_code == 412
        assert stale.headers["Content-Type"] == "application/problem+json"

        listed = requests.get(
            f"{branch_url}/locations",
            params={"min_position": edited.json()["position"], "parent_id": continent["id"]},
            headers=owner.auth,
            timeout=10,
        )
        assert listed.status_code == 200, listed.text
        assert [item["name"] for item in listed.json()["items"]] == ["The Shire"]
