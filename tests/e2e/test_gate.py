"""Who may reach an endpoint is decided before its body is read: an invalid body never turns
a missing token into 422, nor a world the caller has no role in into anything but 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Server, User
from tests.e2e.support import TIMEOUT, assert_invalid, assert_problem

INVALID: dict[str, Any] = {"name": "", "kind": 7, "unexpected": True}


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(url, json=body, headers=headers or {}, timeout=TIMEOUT)


@pytest.mark.parametrize("body", [INVALID, [], "text"])
def test_no_token_with_an_invalid_body_is_401(server: Server, body: Any) -> None:
    assert_problem(post(f"{server.api}/worlds", body), 401)


def test_no_token_on_a_world_path_with_an_invalid_body_is_401(
    server: Server, world: dict[str, Any]
) -> None:
    url = f"{server.api}/worlds/{world['id']}/branches/main/elements"
    assert_problem(post(url, INVALID), 401)


def test_a_stranger_with_an_invalid_body_is_404(
    server: Server, world: dict[str, Any], register: Callable[[], User]
) -> None:
    stranger = register()
    url = f"{server.api}/worlds/{world['id']}/branches/main/elements"
    assert_problem(post(url, INVALID, stranger.auth), 404)
    patch = requests.patch(
        f"{server.api}/worlds/{world['id']}", json=INVALID, headers=stranger.auth, timeout=TIMEOUT
    )
    assert_problem(patch, 404)


def test_a_member_with_an_invalid_body_still_gets_422(
    server: Server, world: dict[str, Any], owner: User
) -> None:
    url = f"{server.api}/worlds/{world['id']}/branches/main/elements"
    assert_invalid(post(url, INVALID, owner.auth), "name")


def test_public_paths_need_no_token(server: Server) -> None:
    assert_invalid(post(f"{server.api}/auth/token", {}), "email")
