"""Archives over real HTTP: export by role, import back (409), as a copy, refusals, retries."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Server, User
from tests.e2e.support import (
    TIMEOUT,
    Client,
    assert_problem,
    branch_path,
    items,
    media_type,
    new_world,
)

NDJSON = "application/x-ndjson"


@dataclass
class Story:
    """A world with content on two branches, members in two roles, and a stranger."""

    server: Server
    owner: Client
    auditor: Client
    viewer: Client
    stranger: Client
    world: dict[str, Any]

    @property
    def export_path(self) -> str:
        return f"/worlds/{self.world['id']}/export"


@pytest.fixture(scope="module")
def story(server: Server, register: Callable[[], User]) -> Story:
    owner = Client(server, register())
    world = new_world(owner, "Archived")
    main = branch_path(world)
    owner.create(f"{main}/locations", {"name": "Harbour", "kind": "city"})
    owner.create(f"{main}/elements", {"name": "Ilsa", "kind": "character", "tags": ["hero"]})
    forked = owner.post(f"/worlds/{world['id']}/branches", {"name": "what-if", "from": "main"})
    assert forked.status_code == 201, forked.text
    owner.create(f"{branch_path(world, 'what-if')}/elements", {"name": "Lantern", "kind": "lamp"})
    clients = {}
    for role in ("auditor", "viewer"):
        user = register()
        given = owner.put(f"/worlds/{world['id']}/members/{user.id}", {"role": role})
        assert given.status_code == 200, given.text
        clients[role] = Client(server, user)
    return Story(
        server, owner, clients["auditor"], clients["viewer"], Client(server, register()), world
    )


@pytest.fixture(scope="module")
def archive(story: Story) -> bytes:
    """The world's archive as its owner exports it."""
    response = story.owner.get(story.export_path)
    assert response.status_code == 200, response.text
    return response.content


def upload(
    client: Client, body: bytes | Iterator[bytes], query: str = "", **headers: str
) -> requests.Response:
    return requests.post(
        client.url(f"/worlds/import{query}"),
        data=body,
        headers=client.headers(
            {"Content-Type": NDJSON, **{k.replace("_", "-"): v for k, v in headers.items()}}
        ),
        timeout=TIMEOUT,
    )


def chunks(archive: bytes) -> Iterator[bytes]:
    """The archive line by line: requests sends it chunked, as a stream."""
    yield from archive.splitlines(keepends=True)


class TestExport:
    def test_an_owner_gets_every_event_as_ndjson(self, story: Story, archive: bytes) -> None:
        response = story.owner.get(story.export_path)
        assert media_type(response) == NDJSON
        assert "attachment" in response.headers["Content-Disposition"]
        lines = [json.loads(line) for line in archive.splitlines()]
        header = lines[0]
        assert header["format"] == "space-pearl-archive"
        assert header["world_id"] == story.world["id"]
        assert [s.get("name") for s in header["streams"]] == [None, "main", "what-if"]
        assert len(lines) == 1 + sum(s["events"] for s in header["streams"])
        assert all(len(line["hash"]) == 64 for line in lines[1:])
        assert any(line["state"].get("fields", {}).get("name") == "Lantern" for line in lines[1:])

    def test_an_auditor_gets_the_same_archive(self, story: Story, archive: bytes) -> None:
        response = story.auditor.get(story.export_path)
        assert response.status_code == 200, response.text
        assert response.content == archive

    def test_a_viewer_may_not_export(self, story: Story) -> None:
        assert_problem(story.viewer.get(story.export_path), 403)

    def test_a_stranger_sees_no_such_world(self, story: Story) -> None:
        assert_problem(story.stranger.get(story.export_path), 404)

    def test_without_a_token_the_answer_is_401(self, story: Story) -> None:
        assert_problem(Client(story.server, None).get(story.export_path), 401)


class TestImport:
    def test_the_world_into_the_server_it_came_from_is_a_conflict(
        self, story: Story, archive: bytes
    ) -> None:
        before = story.server.event_count()
        body = assert_problem(upload(story.owner, archive), 409)
        assert story.world["id"] in body["detail"]
        assert story.server.event_count() == before

    def test_a_copy_is_a_new_world_its_importer_owns_and_reads(
        self, story: Story, archive: bytes
    ) -> None:
        response = upload(story.stranger, chunks(archive), "?as_copy=true")
        assert response.status_code == 201, response.text
        copy = response.json()
        assert copy["id"] != story.world["id"]
        assert copy["copied_from"] == story.world["id"]
        assert copy["name"] == "Archived"
        assert response.headers["Location"] == f"/api/v1/worlds/{copy['id']}"
        assert response.headers["X-Position"] == str(copy["position"])
        assert copy["events"] == len(archive.splitlines()) - 1 + 1  # + the importer's role
        read = {"min_position": copy["position"]}
        original = story.owner.get(f"{branch_path(story.world, 'what-if')}/elements", read)
        copied = story.stranger.get(f"{branch_path(copy, 'what-if')}/elements", read)
        assert [(e["id"], e["name"]) for e in items(copied)] == [
            (e["id"], e["name"]) for e in items(original)
        ]
        members = items(story.stranger.get(f"/worlds/{copy['id']}/members"))
        assert story.stranger.user is not None
        assert {"user_id": story.stranger.user.id, "role": "owner"} in members

    def test_a_tampered_archive_is_refused_naming_the_line(
        self, story: Story, archive: bytes
    ) -> None:
        lines = archive.splitlines(keepends=True)
        number = next(n for n, line in enumerate(lines, 1) if b'"Harbour"' in line)
        lines[number - 1] = lines[number - 1].replace(b'"Harbour"', b'"Hovel"')
        before = story.server.event_count()
        response = upload(story.stranger, b"".join(lines), "?as_copy=true")
        body = assert_problem(response, 422)
        assert body["line"] == number
        assert body["errors"]["line"][0].startswith(f"{number}: hash does not match")
        assert story.server.event_count() == before

    def test_a_form_upload_is_refused(self, story: Story, archive: bytes) -> None:
        response = requests.post(
            story.stranger.url("/worlds/import"),
            files={"archive": ("world.ndjson", archive)},
            headers=story.stranger.headers(),
            timeout=TIMEOUT,
        )
        assert_problem(response, 415)

    def test_a_retried_import_with_its_idempotency_key_makes_one_copy(
        self, story: Story, archive: bytes
    ) -> None:
        first = upload(story.stranger, archive, "?as_copy=true", Idempotency_Key="copy-1")
        assert first.status_code == 201, first.text
        count = story.server.event_count()
        again = upload(story.stranger, archive, "?as_copy=true", Idempotency_Key="copy-1")
        assert again.status_code == 201, again.text
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert story.server.event_count() == count
        other = upload(
            story.stranger, archive[:-1] + b" \n", "?as_copy=true", Idempotency_Key="copy-1"
        )
        assert_problem(other, 422)
