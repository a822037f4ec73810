"""Small helpers shared by the end-to-end tests: a client bound to a user, problem checks."""

from __future__ import annotations

from typing import Any

import requests

from tests.e2e.conftest import Server, User

TIMEOUT = 10
PROBLEM_TYPE = "application/problem+json"
COLLECTIONS = ("locations", "elements", "timelines", "timeline-events")


def media_type(response: requests.Response) -> str:
    """The response's media type without parameters (`application/json`)."""
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower()


def assert_problem(response: requests.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem document with `status`; returns its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert media_type(response) == PROBLEM_TYPE, response.headers.get("Content-Type")
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert isinstance(body["type"], str) and body["type"], body
    assert isinstance(body["title"], str) and body["title"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    return body


def assert_invalid(response: requests.Response, *fields: str) -> dict[str, Any]:
    """A 422 problem whose `errors` name each of `fields` (or a part of it: `start.year`)."""
    body = assert_problem(response, 422)
    errors = body.get("errors")
    assert isinstance(errors, dict) and errors, body
    for field in fields:
        named = [
            key for key in errors if key == field or key.startswith((f"{field}.", f"{field}["))
        ]
        assert named, (field, errors)
        assert all(errors[key] for key in named), (field, errors)
    return body


class Client:
    """HTTP calls as one user, each with a timeout."""

    def __init__(self, server: Server, user: User | None) -> None:
        self.server = server
        self.user = user

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**(self.user.auth if self.user else {}), **(extra or {})}

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.server.api + path

    def get(
        self, path: str, params: dict[str, Any] | None = None, **headers: str
    ) -> requests.Response:
        return requests.get(
            self.url(path), params=params, headers=self.headers(_h(headers)), timeout=TIMEOUT
        )

    def post(self, path: str, body: Any = None, **headers: str) -> requests.Response:
        return requests.post(
            self.url(path), json=body, headers=self.headers(_h(headers)), timeout=TIMEOUT
        )

    def patch(self, path: str, body: Any = None, **headers: str) -> requests.Response:
        return requests.patch(
            self.url(path), json=body, headers=self.headers(_h(headers)), timeout=TIMEOUT
        )

    def put(self, path: str, body: Any = None, **headers: str) -> requests.Response:
        return requests.put(
            self.url(path), json=body, headers=self.headers(_h(headers)), timeout=TIMEOUT
        )

    def delete(
        self, path: str, params: dict[str, Any] | None = None, **headers: str
    ) -> requests.Response:
        return requests.delete(
            self.url(path), params=params, headers=self.headers(_h(headers)), timeout=TIMEOUT
        )

    def create(self, path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        """POST that must answer 201; returns the created resource."""
        response = self.post(path, body, **headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


def _h(headers: dict[str, str]) -> dict[str, str]:
    """Keyword header names (`If_Match`) as HTTP header names (`If-Match`)."""
    return {name.replace("_", "-"): value for name, value in headers.items()}


def new_world(client: Client, name: str = "A world", **fields: Any) -> dict[str, Any]:
    """A world owned by the client's user."""
    return client.create("/worlds", {"name": name, **fields})


def branch_path(world: dict[str, Any], branch: str = "main") -> str:
    return f"/worlds/{world['id']}/branches/{branch}"


def items(response: requests.Response) -> list[dict[str, Any]]:
    """The items of a 200 list response."""
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return found
