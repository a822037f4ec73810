"""Hostile request bodies and parameters, over HTTP: refused cleanly, stored faithfully.

Every refusal is a problem document, never a 500, and leaves the branch as it was: its
version, read once the read model has caught up with the whole event log, is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.e2e.conftest import Server, User
from tests.e2e.support import TIMEOUT, Client, assert_problem, media_type

MAX_BODY_BYTES = 1024 * 1024  # the server's default
INJECTIONS = [
    "Robert'); DROP TABLE pearl_events;--",
    "' OR '1'='1' --",
    '"; SELECT pg_sleep(10); --',
    "<script>alert(document.cookie)</script>",
    "<img src=x onerror=alert(1)>",
    "\u202eevil\u200b \U0001f600 \\u0000 %00 ${jndi:ldap://x}",
]


@pytest.fixture
def hostile(server: Server, owner: User, branch_url: str) -> Iterator[Callable[[], int]]:
    """The branch's version once the read model has every event written so far."""
    engine = create_engine(server.database_url)
    client = Client(server, owner)

    def version() -> int:
        with engine.connect() as conn:
            head = int(conn.execute(text("SELECT coalesce(max(id), 0) FROM pearl_events")).one()[0])
        response = client.get(branch_url, {"min_position": head})
        assert response.status_code == 200, response.text
        return int(response.json()["head_version"])

    yield version
    engine.dispose()


def post_raw(url: str, user: User, data: bytes, content_type: str) -> requests.Response:
    headers = {**user.auth, "Content-Type": content_type}
    return requests.post(url, data=data, headers=headers, timeout=TIMEOUT)


def assert_healthy(server: Server, user: User, branch_url: str) -> None:
    assert requests.get(f"{server.url}/healthz", timeout=TIMEOUT).status_code == 200
    works = Client(server, user).post(f"{branch_url}/locations", {"name": "Fine", "kind": "ok"})
    assert works.status_code == 201, works.text


def test_a_body_over_the_limit_is_413(
    server: Server, owner: User, branch_url: str, hostile: Callable[[], int]
) -> None:
    before = hostile()
    body = json.dumps({"name": "Big", "kind": "x", "description": "x" * MAX_BODY_BYTES})
    response = post_raw(f"{branch_url}/locations", owner, body.encode(), "application/json")
    assert_problem(response, 413)
    assert hostile() == before
    assert_healthy(server, owner, branch_url)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"name": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b', "kind": "x"}',
    ],
    ids=["open-brackets", "balanced-brackets", "nested-objects"],
)
def test_deeply_nested_json_is_refused(
    server: Server, owner: User, branch_url: str, hostile: Callable[[], int], body: bytes
) -> None:
    before = hostile()
    for path in ("/locations", "/merge", "/suggestions"):
        response = post_raw(branch_url + path, owner, body, "application/json")
        assert response.status_code in (400, 422), (path, response.status_code, response.text)
        assert_problem(response, response.status_code)
    assert hostile() == before
    assert_healthy(server, owner, branch_url)


def test_invalid_utf8_is_400(
    server: Server, owner: User, branch_url: str, hostile: Callable[[], int]
) -> None:
    before = hostile()
    for body in (b'{"name": "\xff\xfe", "kind": "x"}', b"\xc3\x28", b'{"name": "\xed\xa0\x80"}'):
        response = post_raw(f"{branch_url}/locations", owner, body, "application/json")
        assert_problem(response, 400)
    assert hostile() == before


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_body_that_is_not_json_is_refused(
    owner: User, branch_url: str, hostile: Callable[[], int], content_type: str
) -> None:
    before = hostile()
    body = b'{"name": "Sneaky", "kind": "x"}'
    response = post_raw(f"{branch_url}/locations", owner, body, content_type)
    assert response.status_code in (400, 415, 422), (response.status_code, response.text)
    assert_problem(response, response.status_code)
    assert hostile() == before


def test_metadata_over_64_kib_is_422(
    server: Server, owner: User, branch_url: str, hostile: Callable[[], int]
) -> None:
    client = Client(server, owner)
    before = hostile()
    huge = {f"k{i}": "v" * 1000 for i in range(70)}
    response = client.post(
        f"{branch_url}/locations", {"name": "Hoard", "kind": "x", "metadata": huge}
    )
    body = assert_problem(response, 422)
    assert "metadata" in body["errors"], body
    assert hostile() == before


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Nul\x00name", "kind": "x"},
        {"name": "Ok", "kind": "x", "description": "a\x00b"},
        {"name": "Ok", "kind": "x", "metadata": {"k": "v\x00"}},
        {"name": "Ok", "kind": "x", "metadata": {"k\x00": "v"}},
        {"name": "Ok", "kind": "x", "metadata": {"deep": [{"k": ["\x00"]}]}},
    ],
)
def test_nul_characters_are_422(
    server: Server, owner: User, branch_url: str, hostile: Callable[[], int], body: dict[str, Any]
) -> None:
    before = hostile()
    assert_problem(Client(server, owner).post(f"{branch_url}/locations", body), 422)
    assert hostile() == before


def test_nul_in_the_url_is_refused(server: Server, owner: User, branch_url: str) -> None:
    client = Client(server, owner)
    for path, params in [
        ("/search", {"q": "a\x00b"}),
        ("/locations", {"q": "a\x00b"}),
        ("/locations", {"kind": "a\x00b"}),
        ("/locations", {"metadata": '{"k": "\\u0000"}'}),
        ("/history", {"type": "a\x00b"}),
        ("/history", {"actor\x00": "x"}),
    ]:
        response = client.get(branch_url + path, params)
        assert response.status_code == 422, (path, params, response.text)
        assert assert_problem(response, 422)["errors"], response.text
    world_url = branch_url.rsplit("/branches/", 1)[0]
    for url in (
        f"{world_url}/branches/ma%00in",
        f"{world_url}/branches/ma%00in/locations",
        f"{world_url}/compare?base=main&head=ma%00in",
        f"{world_url}/proposals?branch=ma%00in",
    ):
        response = client.get(url)
        assert response.status_code in (404, 422), (url, response.text)
        assert_problem(response, response.status_code)
    refused = client.post(f"{world_url}/branches", {"name": "a\x00b", "from": "main"})
    assert_problem(refused, 422)


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injections_are_stored_and_returned_byte_for_byte(
    server: Server, owner: User, branch_url: str, payload: str
) -> None:
    client = Client(server, owner)
    body = {
        "name": payload[:200],
        "kind": payload[:100],
        "description": payload,
        "metadata": {payload: payload, "nested": [payload, {"k": payload}]},
    }
    created = client.post(f"{branch_url}/locations", body)
    assert created.status_code == 201, created.text
    for response in (
        client.get(f"{branch_url}/locations/{created.json()['id']}", min_position_header(created)),
        client.get(f"{branch_url}/search", {"q": payload, **min_position_header(created)}),
        client.get(f"{branch_url}/locations", {"q": payload, **min_position_header(created)}),
        client.get(f"{branch_url}/locations", {"kind": payload, **min_position_header(created)}),
    ):
        assert response.status_code == 200, response.text
        assert media_type(response) == "application/json"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    found = client.get(f"{branch_url}/locations/{created.json()['id']}").json()
    for field in ("name", "kind", "description", "metadata"):
        assert found[field] == body[field], field
    listed = client.get(f"{branch_url}/locations", {"kind": payload[:100]}).json()["items"]
    assert [item["id"] for item in listed] == [created.json()["id"]]
    assert server.event_count() > 0  # the injected DROP TABLE did nothing


def min_position_header(created: requests.Response) -> dict[str, str]:
    return {"min_position": created.headers["X-Position"]}


def test_nul_characters_anywhere_in_a_body_are_refused(
    server: Server, owner: User, branch_url: str, hostile: Callable[[], int]
) -> None:
    client = Client(server, owner)
    world_url = branch_url.rsplit("/branches/", 1)[0]
    proposal = client.post(f"{branch_url}/suggestions", {"kind": "consistency"})
    assert proposal.status_code == 202, proposal.text
    before = hostile()
    fresh = f"nul-{uuid4().hex[:8]}@example.com"
    cases: list[tuple[str, dict[str, Any]]] = [
        (
            f"{server.api}/auth/register",
            {"email": fresh, "password": "x" * 12, "display_name": "\x00"},
        ),
        (
            f"{server.api}/auth/register",
            {"email": "a\x00@example.com", "password": "x" * 12, "display_name": "N"},
        ),
        (f"{server.api}/auth/token", {"email": "a\x00b@example.com", "password": "x" * 12}),
        (f"{server.api}/worlds", {"name": "W\x00"}),
        (f"{world_url}/branches", {"name": "fine", "from": "ma\x00in"}),
        (f"{branch_url}/merge", {"source": "si\x00de", "dry_run": True}),
        (f"{branch_url}/suggestions", {"kind": "expand", "prompt": "more\x00"}),
        (f"{branch_url}/suggestions", {"kind": "link-mentions", "target": "\x00"}),
        (f"{world_url}/proposals/{proposal.json()['id']}/reject", {"reason": "no\x00"}),
    ]
    for url, body in cases:
        response = requests.post(url, json=body, headers=owner.auth, timeout=TIMEOUT)
        assert response.status_code in (404, 422), (url, body, response.text)
        assert_problem(response, response.status_code)
    patched = client.patch(world_url, {"description": "d\x00"})
    assert_problem(patched, 422)
    assert hostile() == before
