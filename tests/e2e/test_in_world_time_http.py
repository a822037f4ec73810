"""In-world time over HTTP: which timeline events involve an element up to a date, and how
that combines with record time (`as_of_version`)."""

from __future__ import annotations

from typing import Any

import requests

from tests.e2e.conftest import User


def _post(url: str, user: User, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(url, json=body, headers=user.auth, timeout=10)
    assert response.status_code == 201, response.text
    return dict(response.json())


class TestAnElementAtAnInWorldDate:
    def test_lists_the_events_involving_it_up_to_that_date_in_in_world_order(
        self, owner: User, branch_url: str
    ) -> None:
        hero = _post(f"{branch_url}/elements", owner, {"kind": "character", "name": "Hero"})
        age = _post(f"{branch_url}/timelines", owner, {"name": "Age"})

        def happening(title: str, start: dict[str, int]) -> dict[str, Any]:
            body = {
                "timeline_id": age["id"],
                "title": title,
                "start": start,
                "element_ids": [hero["id"]],
            }
            return _post(f"{branch_url}/timeline-events", owner, body)

        late = happening("Coronation", {"year": 20, "month": 6})
        early = happening("Birth", {"year": -5})
        middle = happening("Quest", {"year": 12, "month": 3, "day": 9})
        url = f"{branch_url}/elements/{hero['id']}"

        def titles(**params: Any) -> list[str]:
            response = requests.get(
                url,
                params={"min_position": middle["position"], **params},
                headers=owner.auth,
                timeout=10,
            )
            assert response.status_code == 200, response.text
            return [event["title"] for event in response.json()["timeline_events"]]

        assert titles(at="12") == ["Birth", "Quest"]  # a year covers its whole period
        assert titles(at="12-03-08") == ["Birth"]
        assert titles(at="20") == ["Birth", "Quest", "Coronation"]
        assert titles(at="-6") == []
        # both axes: as the branch stood when only the coronation and the birth were recorded
        assert titles(at="20", as_of_version=early["version"]) == ["Birth", "Coronation"]
        assert late["version"] < early["version"] < middle["version"]

    def test_an_impossible_date_is_a_422(self, owner: User, branch_url: str) -> None:
        hero = _post(f"{branch_url}/elements", owner, {"kind": "character", "name": "Hero"})
        response = requests.get(
            f"{branch_url}/elements/{hero['id']}",
            params={"at": "12-13", "min_position": hero["position"]},
            headers=owner.auth,
            timeout=10,
        )
        assert response.status_code == 422
        assert "at" in response.json()["errors"]
