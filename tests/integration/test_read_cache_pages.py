"""Cached list pages over the Flask test client: a hit answers the very bytes of the miss.

A world is written through the write side and projected; every page is read twice (the
first a miss, which stores the response's ETag and body in Redis, the second a hit) and
both answers must be identical, the hit coming from the stored bytes alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest
import redis
from flask.testing import FlaskClient
from marshmallow import Schema
from sqlalchemy import Engine, create_engine

from api import create_app
from api.reading import etag_of
from api.routes.content import PAGE_SCHEMAS
from api.schemas.content import SearchPageSchema
from api.tokens import issue
from commands.application import WorldHistory
from commands.messages import AddEntity, CreateWorld
from commands.provenance import Provenance
from commands.world import branch_id
from pearl.config import Config
from pearl.migrate import upgrade
from projections.runner import ProjectionRunner
from queries.content import Filters, list_entities


@dataclass
class Reader:
    client: FlaskClient
    headers: dict[str, str]
    engine: Engine
    history: WorldHistory
    cache: redis.Redis
    world_id: UUID
    owner: str
    timeline_id: str

    @property
    def branch(self) -> str:
        return f"/api/v1/worlds/{self.world_id}/branches/main"

    def get(self, path: str, **headers: str) -> Any:
        return self.client.get(self.branch + path, headers={**self.headers, **headers})

    def keys(self) -> list[bytes]:
        return list(self.cache.scan_iter(f"pearl:q:{self.world_id}:*"))

    def forget(self) -> None:
        for key in self.keys():
            self.cache.delete(key)

    def add(self, collection: str, fields: dict[str, Any]) -> str:
        entity_id = str(uuid4())
        command = AddEntity(self.world_id, "main", collection, entity_id, fields)
        self.history.handle(command, Provenance(actor=self.owner))
        ProjectionRunner(self.engine, self.history).catch_up()
        return entity_id


@pytest.fixture(scope="module")
def reader(database_factory: Callable[[str], str], redis_url: str) -> Iterator[Reader]:
    url = database_factory("pearl_cache_pages")
    upgrade(url)
    config = Config(database_url=url, redis_url=redis_url, jwt_secret="s" * 40)
    app = create_app(config)
    history: WorldHistory = app.extensions["pearl"].history
    engine = create_engine(url)
    owner = str(uuid4())
    world_id = uuid4()
    history.handle(CreateWorld(world_id, owner_id=owner, name="Cached"), Provenance(actor=owner))
    cache = redis.Redis.from_url(redis_url)
    token = issue(config, owner, "access")
    found = Reader(
        app.test_client(), {"Authorization": f"Bearer {token}"}, engine, history, cache,
        world_id, owner, "",
    )  # fmt: skip
    for i, word in enumerate(["amber", "basalt", "amber cinder"]):
        found.add("elements", {"kind": "character", "name": f"{word} {i}", "tags": ["t"]})
    found.timeline_id = found.add("timelines", {"name": "Ages"})
    for year in (5, 9, 30):
        fields = {"timeline_id": found.timeline_id, "title": f"Y{year}", "start": {"year": year}}
        found.add("timeline_events", fields)
    yield found
    found.forget()
    cache.close()
    engine.dispose()


PAGES = [
    "/elements?limit=2",
    "/elements?tag=t&limit=50",
    "/search?q=amber",
    "/timeline-events?from=4&to=10",
]


def pages(reader: Reader) -> list[str]:
    return [*PAGES, f"/timelines/{reader.timeline_id}/events?from=8"]


def test_a_hit_answers_the_bytes_and_headers_of_the_miss(reader: Reader) -> None:
    for path in pages(reader):
        reader.forget()
        miss = reader.get(path)
        assert miss.status_code == 200, (path, miss.get_json())
        assert miss.get_json()["items"], path
        assert len(reader.keys()) == 1, path
        hit = reader.get(path)
        assert hit.status_code == 200
        assert hit.data == miss.data, path
        for header in ("Content-Type", "Content-Length", "ETag"):
            assert hit.headers[header] == miss.headers[header], (path, header)


def test_a_miss_answers_the_query_page_and_its_content_etag(reader: Reader) -> None:
    reader.forget()
    miss = reader.get("/elements?limit=2")
    with reader.engine.connect() as conn:
        items, next_cursor = list_entities(
            conn, branch_id(reader.world_id, "main"), "elements", Filters(),
            limit=2, cursor=None, as_of=None,
        )  # fmt: skip
    body = {"items": items, "next_cursor": next_cursor}
    assert next_cursor is not None
    assert miss.get_json() == body
    assert miss.headers["ETag"] == etag_of(miss.data)  # a digest of the bytes served
    assert miss.headers["Content-Type"] == "application/json"


def test_every_kind_of_page_is_served_as_its_schema_would_dump_it(reader: Reader) -> None:
    """Pages are served as queries.content builds them, without a marshmallow dump: that is
    only right while the dump would change nothing, for every collection and for search."""
    schemas: dict[str, type[Schema]] = {
        "/elements": PAGE_SCHEMAS["elements"],
        "/locations": PAGE_SCHEMAS["locations"],
        "/timelines": PAGE_SCHEMAS["timelines"],
        "/timeline-events": PAGE_SCHEMAS["timeline_events"],
        f"/timelines/{reader.timeline_id}/events": PAGE_SCHEMAS["timeline_events"],
        "/search": SearchPageSchema,
    }
    reader.add("locations", {"kind": "city", "name": "amber port", "metadata": {"size": 3}})
    for path, schema in schemas.items():
        reader.forget()
        query = "?q=amber&limit=2" if path == "/search" else "?limit=2"
        served = reader.get(path + query).get_json()
        assert served["items"], path
        assert schema().dump(served) == served, path


def test_a_hit_is_answered_from_the_stored_bytes_alone(reader: Reader) -> None:
    reader.forget()
    miss = reader.get("/elements?limit=2")
    [key] = reader.keys()
    stored = reader.cache.get(key)
    assert stored == miss.headers["ETag"].encode() + b"\n" + miss.data
    doctored = json.dumps({"items": [], "next_cursor": None}).encode()
    reader.cache.set(key, b'"doctored"\n' + doctored)
    hit = reader.get("/elements?limit=2")
    assert hit.status_code == 200
    assert hit.data == doctored
    assert hit.headers["ETag"] == '"doctored"'


def test_a_matching_if_none_match_answers_304_on_a_miss_and_on_a_hit(reader: Reader) -> None:
    reader.forget()
    etag = reader.get("/search?q=amber").headers["ETag"]
    for _ in ("hit", "miss"):
        again = reader.get("/search?q=amber", If_None_Match=f'"other", {etag}')
        assert again.status_code == 304
        assert again.headers["ETag"] == etag
        assert again.data == b""
        reader.forget()
    assert reader.get("/search?q=amber", If_None_Match='"other"').status_code == 200


def test_a_newly_projected_write_is_read_fresh_not_from_the_old_entry(reader: Reader) -> None:
    reader.forget()
    before = reader.get("/search?q=zircon")
    assert before.get_json()["items"] == []
    added = reader.add("elements", {"kind": "artifact", "name": "zircon"})
    after = reader.get("/search?q=zircon")
    assert [item["id"] for item in after.get_json()["items"]] == [added]
    assert after.headers["ETag"] != before.headers["ETag"]
    assert len(reader.keys()) == 2  # one entry per projected position
