"""`Idempotency-Key` on POST: a retry gets the first answer and records nothing new."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from threading import Barrier
from typing import Any
from uuid import uuid4

import pytest
import requests

from tests.e2e.conftest import Server, User
from tests.e2e.support import Client, assert_invalid, branch_path


@dataclass
class Writers:
    server: Server
    alice: Client
    bob: Client
    world: dict[str, Any]

    @property
    def locations(self) -> str:
        return f"{branch_path(self.world)}/locations"


@pytest.fixture(scope="module")
def writers(server: Server, register: Callable[[], User]) -> Writers:
    alice, bob = register(), register()
    world = Client(server, alice).create("/worlds", {"name": "Retry world"})
    added = Client(server, alice).put(f"/worlds/{world['id']}/members/{bob.id}", {"role": "editor"})
    assert added.status_code == 200, added.text
    return Writers(server, Client(server, alice), Client(server, bob), world)


def key() -> str:
    return f"key-{uuid4()}"


def _target(writers: Writers, what: str) -> tuple[str, dict[str, Any]]:
    """Path and a fresh body for a POST of `what`."""
    tag = uuid4().hex[:8]
    branch = branch_path(writers.world)
    if what == "world":
        return "/worlds", {"name": f"World {tag}"}
    if what == "element":
        return f"{branch}/elements", {"name": f"Thing {tag}", "kind": "artifact"}
    if what == "timeline":
        return f"{branch}/timelines", {"name": f"Line {tag}"}
    if what == "timeline-event":
        timeline = writers.alice.create(f"{branch}/timelines", {"name": f"For {tag}"})
        body = {"timeline_id": timeline["id"], "title": f"Event {tag}", "start": {"year": 3}}
        return f"{branch}/timeline-events", body
    return writers.locations, {"name": f"Place {tag}", "kind": "town"}


class TestRetries:
    @pytest.mark.parametrize("what", ["world", "location", "element", "timeline", "timeline-event"])
    def test_a_retry_returns_the_first_response_and_appends_nothing(
        self, writers: Writers, what: str
    ) -> None:
        path, body = _target(writers, what)
        idem = key()
        before = writers.server.event_count()
        first = writers.alice.post(path, body, Idempotency_Key=idem)
        assert first.status_code == 201, first.text
        assert "Idempotent-Replayed" not in first.headers
        after_first = writers.server.event_count()
        assert after_first > before

        retry = writers.alice.post(path, body, Idempotency_Key=idem)
        assert retry.status_code == 201, retry.text
        assert retry.headers.get("Idempotent-Replayed") == "true"
        assert retry.json() == first.json()
        assert retry.json()["id"] == first.json()["id"]
        assert retry.headers.get("Location") == first.headers["Location"]
        assert writers.server.event_count() == after_first

        third = writers.alice.post(path, body, Idempotency_Key=idem)
        assert third.json()["id"] == first.json()["id"]
        assert writers.server.event_count() == after_first

    def test_without_a_key_the_same_post_creates_twice(self, writers: Writers) -> None:
        path, body = _target(writers, "location")
        first = writers.alice.create(path, body)
        second = writers.alice.create(path, body)
        assert first["id"] != second["id"]

    @pytest.mark.parametrize("what", ["world", "location"])
    def test_the_same_key_with_another_body_is_a_422(self, writers: Writers, what: str) -> None:
        path, body = _target(writers, what)
        idem = key()
        assert writers.alice.post(path, body, Idempotency_Key=idem).status_code == 201
        before = writers.server.event_count()
        other = {**body, "name": body["name"] + " (changed)"}
        assert_invalid(writers.alice.post(path, other, Idempotency_Key=idem))
        assert writers.server.event_count() == before

    def test_the_same_key_of_another_user_is_independent(self, writers: Writers) -> None:
        path, body = _target(writers, "location")
        idem = key()
        mine = writers.alice.post(path, body, Idempotency_Key=idem)
        assert mine.status_code == 201, mine.text
        before = writers.server.event_count()
        theirs = writers.bob.post(path, body, Idempotency_Key=idem)
        assert theirs.status_code == 201, theirs.text
        assert "Idempotent-Replayed" not in theirs.headers
        assert theirs.json()["id"] != mine.json()["id"]
        assert writers.server.event_count() == before + 1
        other_body = {**body, "name": "Bob's own place"}
        bobs_second = writers.bob.post(path, other_body, Idempotency_Key=key())
        assert bobs_second.status_code == 201, bobs_second.text

    @pytest.mark.parametrize("what", ["world", "location"])
    def test_ten_concurrent_requests_with_one_key_record_one_command(
        self, writers: Writers, what: str
    ) -> None:
        path, body = _target(writers, what)
        idem = key()
        # how many events one such command appends, measured without a key
        before_single = writers.server.event_count()
        writers.alice.create(*_target(writers, what))
        per_command = writers.server.event_count() - before_single

        before = writers.server.event_count()

        start_together = Barrier(10)

        def send(_: int) -> requests.Response:
            start_together.wait(timeout=10)
            return writers.alice.post(path, body, Idempotency_Key=idem)

        with ThreadPoolExecutor(max_workers=10) as pool:
            responses = list(pool.map(send, range(10)))
        assert writers.server.event_count() == before + per_command
        statuses = [r.status_code for r in responses]
        assert statuses == [201] * 10, statuses
        assert len({r.json()["id"] for r in responses}) == 1
        assert all(r.json() == responses[0].json() for r in responses)

    @pytest.mark.parametrize("length", [256, 1000])
    def test_a_key_longer_than_255_characters_is_a_422(self, writers: Writers, length: int) -> None:
        path, body = _target(writers, "location")
        before = writers.server.event_count()
        assert_invalid(writers.alice.post(path, body, Idempotency_Key="k" * length))
        assert writers.server.event_count() == before

    def test_a_key_of_exactly_255_characters_is_accepted(self, writers: Writers) -> None:
        path, body = _target(writers, "location")
        idem = uuid4().hex + "k" * (255 - 32)
        first = writers.alice.post(path, body, Idempotency_Key=idem)
        assert first.status_code == 201, first.text
        again = writers.alice.post(path, body, Idempotency_Key=idem)
        assert again.json()["id"] == first.json()["id"]
        assert again.headers.get("Idempotent-Replayed") == "true"
