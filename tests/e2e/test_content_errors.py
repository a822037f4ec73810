"""Content commands over HTTP: every refusal is a problem and records nothing; PATCH semantics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import uuid4

import pytest
import requests

from tests.e2e.conftest import Server, User
from tests.e2e.support import (
    TIMEOUT,
    Client,
    assert_invalid,
    assert_problem,
    branch_path,
    media_type,
)


@dataclass
class Site:
    """A world of one owner with a timeline, a location, an element and an event on `main`."""

    server: Server
    client: Client
    world: dict[str, Any]
    timeline: dict[str, Any]
    location: dict[str, Any]
    element: dict[str, Any]
    event: dict[str, Any]

    @property
    def branch(self) -> str:
        return branch_path(self.world)

    def path(self, collection: str, entity_id: str | None = None) -> str:
        base = f"{self.branch}/{collection}"
        return base if entity_id is None else f"{base}/{entity_id}"

    def create(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.create(self.path(collection), body)

    def new_event(self, **fields: Any) -> dict[str, Any]:
        body = {"timeline_id": self.timeline["id"], "title": "Something", "start": {"year": 1}}
        return self.create("timeline-events", {**body, **fields})


@pytest.fixture(scope="module")
def site(server: Server, register: Callable[[], User]) -> Site:
    client = Client(server, register())
    world = client.create("/worlds", {"name": "Error-prone world"})
    branch = branch_path(world)
    timeline = client.create(f"{branch}/timelines", {"name": "Ages"})
    location = client.create(f"{branch}/locations", {"name": "Harbour", "kind": "city"})
    element = client.create(f"{branch}/elements", {"name": "Captain", "kind": "character"})
    event = client.create(
        f"{branch}/timeline-events",
        {
            "timeline_id": timeline["id"],
            "title": "Landing",
            "start": {"year": 100, "month": 5, "day": 4},
        },
    )
    return Site(server, client, world, timeline, location, element, event)


def refused(
    site: Site, send: Callable[[], requests.Response], status: int, *fields: str
) -> dict[str, Any]:
    """`send()` must be refused with a problem of `status` and append no event."""
    before = site.server.event_count()
    response = send()
    body = assert_invalid(response, *fields) if status == 422 else assert_problem(response, status)
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert site.server.event_count() == before, "a refused command appended events"
    return body


def _valid(site: Site, collection: str) -> dict[str, Any]:
    return {
        "locations": {"name": "Place", "kind": "town"},
        "elements": {"name": "Thing", "kind": "artifact"},
        "timelines": {"name": "Line"},
        "timeline-events": {
            "timeline_id": site.timeline["id"],
            "title": "Event",
            "start": {"year": 5},
        },
    }[collection]


BIG_METADATA = {"blob": "x" * (64 * 1024)}
UNKNOWN = str(uuid4())

INVALID_CREATES: list[tuple[str, str, dict[str, Any], str]] = [
    # (id, collection, change to a valid body, field named in errors)
    ("unknown-field", "locations", {"colour": "blue"}, "colour"),
    ("unknown-field-element", "elements", {"owner": "me"}, "owner"),
    ("unknown-field-event", "timeline-events", {"when": "now"}, "when"),
    ("name-not-a-string", "locations", {"name": 42}, "name"),
    ("kind-not-a-string", "elements", {"kind": ["a"]}, "kind"),
    ("tags-not-a-list", "elements", {"tags": "hero"}, "tags"),
    ("tag-not-a-string", "elements", {"tags": [1]}, "tags"),
    ("title-not-a-string", "timeline-events", {"title": {"a": 1}}, "title"),
    ("start-not-an-object", "timeline-events", {"start": "412-11-02"}, "start"),
    ("year-not-an-integer", "timeline-events", {"start": {"year": "412"}}, "start"),
    ("year-a-float", "timeline-events", {"start": {"year": 412.5}}, "start"),
    ("element-ids-not-a-list", "timeline-events", {"element_ids": "abc"}, "element_ids"),
    ("parent-id-not-a-uuid", "locations", {"parent_id": "root"}, "parent_id"),
    ("timeline-id-not-a-uuid", "timeline-events", {"timeline_id": 7}, "timeline_id"),
    ("missing-name", "locations", {"name": None}, "name"),
    ("missing-start", "timeline-events", {"start": None}, "start"),
    ("empty-name", "locations", {"name": ""}, "name"),
    ("empty-element-name", "elements", {"name": ""}, "name"),
    ("empty-timeline-name", "timelines", {"name": ""}, "name"),
    ("empty-title", "timeline-events", {"title": ""}, "title"),
    ("name-of-201-chars", "locations", {"name": "n" * 201}, "name"),
    ("element-name-of-201-chars", "elements", {"name": "n" * 201}, "name"),
    ("timeline-name-of-201-chars", "timelines", {"name": "n" * 201}, "name"),
    ("title-of-201-chars", "timeline-events", {"title": "t" * 201}, "title"),
    ("metadata-a-list", "locations", {"metadata": [1, 2]}, "metadata"),
    ("metadata-a-string", "elements", {"metadata": "{}"}, "metadata"),
    ("metadata-over-64-kib", "elements", {"metadata": BIG_METADATA}, "metadata"),
    ("metadata-over-64-kib-event", "timeline-events", {"metadata": BIG_METADATA}, "metadata"),
    ("unknown-parent", "locations", {"parent_id": UNKNOWN}, "parent_id"),
    ("unknown-timeline", "timeline-events", {"timeline_id": UNKNOWN}, "timeline_id"),
    ("unknown-location", "timeline-events", {"location_id": UNKNOWN}, "location_id"),
    ("unknown-element", "timeline-events", {"element_ids": [UNKNOWN]}, "element_ids"),
    (
        "end-before-start",
        "timeline-events",
        {"start": {"year": 10, "month": 3}, "end": {"year": 10, "month": 2}},
        "end",
    ),
    (
        "end-a-year-before-start",
        "timeline-events",
        {"start": {"year": -5}, "end": {"year": -6, "month": 12, "day": 31}},
        "end",
    ),
    ("month-13", "timeline-events", {"start": {"year": 10, "month": 13}}, "start"),
    ("month-0", "timeline-events", {"start": {"year": 10, "month": 0}}, "start"),
    ("day-32", "timeline-events", {"start": {"year": 10, "month": 1, "day": 32}}, "start"),
    ("february-30", "timeline-events", {"start": {"year": 10, "month": 2, "day": 30}}, "start"),
    ("day-without-month", "timeline-events", {"start": {"year": 10, "day": 3}}, "start"),
    ("year-zero", "timeline-events", {"start": {"year": 0}}, "start"),
    ("end-month-13", "timeline-events", {"end": {"year": 10, "month": 13}}, "end"),
    ("date-with-unknown-key", "timeline-events", {"start": {"year": 1, "hour": 3}}, "start"),
]


class TestRefusedCreates:
    @pytest.mark.parametrize(
        ("collection", "change", "field"),
        [case[1:] for case in INVALID_CREATES],
        ids=[case[0] for case in INVALID_CREATES],
    )
    def test_an_invalid_body_is_a_422_keyed_by_field_and_records_nothing(
        self, site: Site, collection: str, change: dict[str, Any], field: str
    ) -> None:
        body = {k: v for k, v in {**_valid(site, collection), **change}.items() if v is not None}
        refused(site, lambda: site.client.post(site.path(collection), body), 422, field)

    @pytest.mark.parametrize("raw", ["[]", '"location"', "17", "null"])
    def test_a_body_that_is_not_a_json_object_is_a_422(self, site: Site, raw: str) -> None:
        def send() -> requests.Response:
            return requests.post(
                site.client.url(site.path("locations")),
                data=raw,
                headers=site.client.headers({"Content-Type": "application/json"}),
                timeout=TIMEOUT,
            )

        refused(site, send, 422)

    def test_malformed_json_is_a_400(self, site: Site) -> None:
        def send() -> requests.Response:
            return requests.post(
                site.client.url(site.path("locations")),
                data='{"name": "x", "kind": ',
                headers=site.client.headers({"Content-Type": "application/json"}),
                timeout=TIMEOUT,
            )

        refused(site, send, 400)

    def test_a_body_over_one_mebibyte_is_a_413(self, site: Site) -> None:
        body = {"name": "Huge", "kind": "town", "description": "d" * (1024 * 1024 + 1)}
        refused(site, lambda: site.client.post(site.path("locations"), body), 413)

    def test_metadata_just_under_64_kib_is_accepted(self, site: Site) -> None:
        metadata = {"blob": "x" * (64 * 1024 - 100)}
        created = site.create("elements", {"name": "Tome", "kind": "book", "metadata": metadata})
        assert created["metadata"] == metadata

    def test_names_of_1_and_200_characters_are_accepted(self, site: Site) -> None:
        for name in ("a", "b" * 200):
            assert site.create("locations", {"name": name, "kind": "k"})["name"] == name

    def test_an_end_at_coarser_precision_that_is_not_before_is_accepted(self, site: Site) -> None:
        created = site.new_event(
            start={"year": 412, "month": 11, "day": 2}, end={"year": 412}, title="Same year"
        )
        assert created["start"] == {"year": 412, "month": 11, "day": 2}
        assert created["end"] == {"year": 412}
        also = site.new_event(
            start={"year": -130, "month": 3, "day": 9}, end={"year": -130, "month": 3}
        )
        assert also["end"] == {"year": -130, "month": 3}

    def test_negative_years_and_a_full_date_are_accepted(self, site: Site) -> None:
        created = site.new_event(
            start={"year": -130, "month": 2, "day": 28}, end={"year": -129, "month": 1, "day": 1}
        )
        assert created["start"] == {"year": -130, "month": 2, "day": 28}
        assert created["end"] == {"year": -129, "month": 1, "day": 1}

    def test_a_sql_and_script_payload_is_stored_and_returned_verbatim(self, site: Site) -> None:
        name = "Robert'); DROP TABLE pearl_events;-- <script>alert(1)</script> \u00e9\u4e16"
        description = '" OR 1=1 --\n<img src=x onerror=alert(1)>'
        before = site.server.event_count()
        response = site.client.post(
            site.path("locations"), {"name": name, "kind": "<b>k</b>", "description": description}
        )
        assert response.status_code == 201, response.text
        assert media_type(response) == "application/json"
        assert response.headers.get("X-Content-Type-Options") == "nosniff"
        created = response.json()
        assert (created["name"], created["kind"], created["description"]) == (
            name,
            "<b>k</b>",
            description,
        )
        assert site.server.event_count() == before + 1
        location = response.headers["Location"]
        assert location.endswith(site.path("locations", created["id"]))
        fetched = site.client.get(
            site.server.url + location if location.startswith("/") else location,
            {"min_position": created["position"]},
        )
        assert fetched.status_code == 200, fetched.text
        assert media_type(fetched) == "application/json"
        assert fetched.json()["name"] == name
        assert fetched.json()["description"] == description


class TestRefusedChanges:
    def test_a_location_cannot_become_its_own_ancestor(self, site: Site) -> None:
        top = site.create("locations", {"name": "Top", "kind": "realm"})
        middle = site.create("locations", {"name": "Mid", "kind": "land", "parent_id": top["id"]})
        low = site.create("locations", {"name": "Low", "kind": "town", "parent_id": middle["id"]})
        top_path = site.path("locations", top["id"])
        for parent in (low["id"], middle["id"], top["id"]):
            move = partial(site.client.patch, top_path, {"parent_id": parent})
            refused(site, move, 422, "parent_id")

    @pytest.mark.parametrize(
        ("collection", "change", "field"),
        [
            ("locations", {"name": ""}, "name"),
            ("locations", {"name": "n" * 201}, "name"),
            ("locations", {"name": None}, "name"),
            ("locations", {"parent_id": str(uuid4())}, "parent_id"),
            ("locations", {"metadata": [1]}, "metadata"),
            ("locations", {"population": 3}, "population"),
            ("elements", {"tags": "x"}, "tags"),
            ("elements", {"metadata": BIG_METADATA}, "metadata"),
            ("elements", {"id": str(uuid4())}, "id"),
            ("timelines", {"name": 5}, "name"),
            ("timeline-events", {"end": {"year": 99}}, "end"),
            ("timeline-events", {"start": {"year": 100, "month": 6}}, "end"),
            ("timeline-events", {"start": {"year": 0}}, "start"),
            ("timeline-events", {"location_id": str(uuid4())}, "location_id"),
            ("timeline-events", {"timeline_id": str(uuid4())}, "timeline_id"),
            ("timeline-events", {"element_ids": [str(uuid4())]}, "element_ids"),
            ("timeline-events", {"start": None}, "start"),
        ],
        ids=[
            "empty-name",
            "long-name",
            "null-name",
            "unknown-parent",
            "metadata-a-list",
            "unknown-field",
            "tags-a-string",
            "metadata-patch-over-64-kib",
            "id-is-read-only",
            "name-a-number",
            "end-before-start",
            "start-after-existing-end",
            "year-zero",
            "unknown-location",
            "unknown-timeline",
            "unknown-element",
            "null-start",
        ],
    )
    def test_an_invalid_patch_is_a_422_keyed_by_field_and_records_nothing(
        self, site: Site, collection: str, change: dict[str, Any], field: str
    ) -> None:
        target = {
            "locations": site.location,
            "elements": site.element,
            "timelines": site.timeline,
            "timeline-events": site.new_event(
                start={"year": 100, "month": 5}, end={"year": 100, "month": 5, "day": 20}
            )
            if collection == "timeline-events"
            else site.event,
        }[collection]
        path = site.path(collection, target["id"])
        refused(site, lambda: site.client.patch(path, change), 422, field)


class TestReferencesOnRemoval:
    def test_a_referenced_location_is_409_until_removed_with_cascade(self, site: Site) -> None:
        city = site.create("locations", {"name": "Old city", "kind": "city"})
        quarter = site.create(
            "locations", {"name": "Quarter", "kind": "district", "parent_id": city["id"]}
        )
        fire = site.new_event(title="Great fire", location_id=city["id"])
        path = site.path("locations", city["id"])
        body = refused(site, lambda: site.client.delete(path), 409)
        assert body["status"] == 409

        before = site.server.event_count()
        removed = site.client.delete(path, {"cascade": "true"})
        assert removed.status_code == 200, removed.text
        payload = removed.json()
        assert payload["id"] == city["id"]
        assert isinstance(payload["version"], int) and payload["version"] > fire["version"]
        assert isinstance(payload["position"], int)
        assert removed.headers["X-Position"] == str(payload["position"])
        # the sub-location removed, the event's location cleared, the location removed
        assert site.server.event_count() == before + 3

        read = {"min_position": payload["position"]}
        assert_problem(site.client.get(path, read), 404)
        assert_problem(site.client.get(site.path("locations", quarter["id"]), read), 404)
        event = site.client.get(site.path("timeline-events", fire["id"]), read)
        assert event.status_code == 200, event.text
        assert event.json()["location_id"] is None

    def test_a_linked_element_is_409_until_removed_with_cascade(self, site: Site) -> None:
        sword = site.create("elements", {"name": "Sword", "kind": "artifact"})
        shield = site.create("elements", {"name": "Shield", "kind": "artifact"})
        forged = site.new_event(title="Forged", element_ids=[sword["id"], shield["id"]])
        lost = site.new_event(title="Lost", element_ids=[sword["id"]])
        path = site.path("elements", sword["id"])
        refused(site, lambda: site.client.delete(path), 409)

        before = site.server.event_count()
        removed = site.client.delete(path, {"cascade": "true"})
        assert removed.status_code == 200, removed.text
        assert removed.json()["id"] == sword["id"]
        assert set(removed.json()) >= {"id", "version", "position"}
        # two unlinks and the removal
        assert site.server.event_count() == before + 3

        read = {"min_position": removed.json()["position"]}
        assert_problem(site.client.get(path, read), 404)
        first = site.client.get(site.path("timeline-events", forged["id"]), read).json()
        second = site.client.get(site.path("timeline-events", lost["id"]), read).json()
        assert first["element_ids"] == [shield["id"]]
        assert second["element_ids"] == []

    def test_a_timeline_with_events_is_409_until_removed_with_cascade(self, site: Site) -> None:
        era = site.create("timelines", {"name": "Short era"})
        dawn = site.new_event(timeline_id=era["id"], title="Dawn")
        dusk = site.new_event(timeline_id=era["id"], title="Dusk")
        path = site.path("timelines", era["id"])
        refused(site, lambda: site.client.delete(path), 409)

        before = site.server.event_count()
        removed = site.client.delete(path, {"cascade": "true"})
        assert removed.status_code == 200, removed.text
        assert removed.json()["id"] == era["id"]
        # both events removed, then the timeline
        assert site.server.event_count() == before + 3

        read = {"min_position": removed.json()["position"]}
        for gone in (path, *(site.path("timeline-events", e["id"]) for e in (dawn, dusk))):
            assert_problem(site.client.get(gone, read), 404)

    def test_an_unreferenced_entity_is_removed_with_one_event(self, site: Site) -> None:
        lonely = site.create("locations", {"name": "Lonely", "kind": "rock"})
        before = site.server.event_count()
        removed = site.client.delete(site.path("locations", lonely["id"]))
        assert removed.status_code == 200, removed.text
        assert removed.json()["id"] == lonely["id"]
        assert removed.json()["version"] == lonely["version"] + 1
        assert site.server.event_count() == before + 1
        again = site.client.delete(site.path("locations", lonely["id"]))
        assert_problem(again, 404)


class TestConditionalRequests:
    def test_a_stale_if_match_is_412_and_records_nothing(self, site: Site) -> None:
        spot = site.create("locations", {"name": "Spot", "kind": "glade"})
        path = site.path("locations", spot["id"])
        moved = site.client.patch(path, {"name": "Spot 2"}, If_Match=f'"{spot["version"]}"')
        assert moved.status_code == 200, moved.text
        stale = f'"{spot["version"]}"'
        refused(site, lambda: site.client.patch(path, {"name": "Spot 3"}, If_Match=stale), 412)
        refused(site, lambda: site.client.delete(path, If_Match=stale), 412)
        current = f'"{moved.json()["version"]}"'
        removed = site.client.delete(path, If_Match=current)
        assert removed.status_code == 200, removed.text

    @pytest.mark.parametrize("header", ["7", 'W/"1"', '"abc"', '"1', "", '"-1"'])
    def test_a_malformed_if_match_is_412(self, site: Site, header: str) -> None:
        path = site.path("elements", site.element["id"])
        refused(site, lambda: site.client.patch(path, {"summary": "x"}, If_Match=header), 412)

    def test_a_matching_if_none_match_is_304(self, site: Site) -> None:
        path = site.path("timelines", site.timeline["id"])
        fresh = {"min_position": site.event["position"]}
        first = site.client.get(path, fresh)
        assert first.status_code == 200, first.text
        etag = first.headers["ETag"]
        assert etag == f'"{first.json()["version"]}"'
        again = site.client.get(path, fresh, If_None_Match=etag)
        assert again.status_code == 304
        assert again.content == b""
        other = site.client.get(path, fresh, If_None_Match='"999999"')
        assert other.status_code == 200


class TestWhatDoesNotExist:
    @pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
    @pytest.mark.parametrize(
        "collection", ["locations", "elements", "timelines", "timeline-events"]
    )
    def test_an_unknown_entity_id_is_404(self, site: Site, method: str, collection: str) -> None:
        url = site.client.url(site.path(collection, str(uuid4())))
        body = {"name": "x"} if method == "PATCH" and collection != "timeline-events" else None
        if method == "PATCH" and collection == "timeline-events":
            body = {"title": "x"}

        def send() -> requests.Response:
            return requests.request(
                method, url, json=body, headers=site.client.headers(), timeout=TIMEOUT
            )

        refused(site, send, 404)

    @pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
    def test_an_entity_id_that_is_not_a_uuid_is_404(self, site: Site, method: str) -> None:
        url = site.client.url(site.path("locations", "not-a-uuid"))

        def send() -> requests.Response:
            return requests.request(
                method, url, json={"name": "x"}, headers=site.client.headers(), timeout=TIMEOUT
            )

        refused(site, send, 404)

    def test_an_unknown_branch_is_404(self, site: Site) -> None:
        elsewhere = f"/worlds/{site.world['id']}/branches/nowhere"
        refused(site, lambda: site.client.get(f"{elsewhere}/locations"), 404)
        refused(site, lambda: site.client.get(elsewhere), 404)
        refused(
            site,
            lambda: site.client.post(f"{elsewhere}/locations", {"name": "x", "kind": "y"}),
            404,
        )
        refused(
            site,
            lambda: site.client.patch(
                f"{elsewhere}/locations/{site.location['id']}", {"name": "x"}
            ),
            404,
        )

    def test_an_entity_of_another_collection_is_404(self, site: Site) -> None:
        refused(site, lambda: site.client.get(site.path("elements", site.location["id"])), 404)


class TestPatchSemantics:
    def test_each_write_response_has_version_position_etag_and_x_position(self, site: Site) -> None:
        response = site.client.patch(site.path("elements", site.element["id"]), {"summary": "S"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] == site.element["id"]
        assert body["summary"] == "S"
        assert isinstance(body["version"], int) and body["version"] > site.element["version"]
        assert isinstance(body["position"], int) and body["position"] > site.event["position"]
        assert response.headers["ETag"] == f'"{body["version"]}"'
        assert response.headers["X-Position"] == str(body["position"])
        assert response.headers.get("X-Content-Type-Options") == "nosniff"

    def test_null_clears_description_and_parent_of_a_location(self, site: Site) -> None:
        parent = site.create("locations", {"name": "Realm", "kind": "realm"})
        child = site.create(
            "locations",
            {"name": "Vale", "kind": "vale", "description": "Green", "parent_id": parent["id"]},
        )
        response = site.client.patch(
            site.path("locations", child["id"]), {"description": None, "parent_id": None}
        )
        assert response.status_code == 200, response.text
        assert response.json()["description"] is None
        assert response.json()["parent_id"] is None
        fetched = site.client.get(
            site.path("locations", child["id"]), {"min_position": response.json()["position"]}
        )
        assert fetched.json()["description"] is None
        assert fetched.json()["parent_id"] is None
        assert fetched.json()["name"] == "Vale"

    def test_null_clears_end_location_and_description_of_an_event(self, site: Site) -> None:
        event = site.new_event(
            title="Storm",
            description="Dark",
            start={"year": 7},
            end={"year": 8},
            location_id=site.location["id"],
        )
        response = site.client.patch(
            site.path("timeline-events", event["id"]),
            {"end": None, "location_id": None, "description": None},
        )
        assert response.status_code == 200, response.text
        fetched = site.client.get(
            site.path("timeline-events", event["id"]),
            {"min_position": response.json()["position"]},
        ).json()
        for body in (response.json(), fetched):
            assert body["end"] is None
            assert body["location_id"] is None
            assert body["description"] is None
            assert body["title"] == "Storm"
            assert body["start"] == {"year": 7}

    def test_fields_not_named_are_left_alone(self, site: Site) -> None:
        element = site.create(
            "elements",
            {"name": "Owl", "kind": "creature", "summary": "Wise", "tags": ["bird"]},
        )
        response = site.client.patch(site.path("elements", element["id"]), {"name": "Old owl"})
        assert response.status_code == 200, response.text
        fetched = site.client.get(
            site.path("elements", element["id"]), {"min_position": response.json()["position"]}
        ).json()
        assert fetched["name"] == "Old owl"
        assert (fetched["kind"], fetched["summary"], fetched["tags"]) == (
            "creature",
            "Wise",
            ["bird"],
        )

    def test_metadata_is_an_rfc_7386_merge_patch(self, site: Site) -> None:
        element = site.create(
            "elements",
            {
                "name": "Guild",
                "kind": "faction",
                "metadata": {"a": 1, "b": {"c": 2, "d": 3}, "keep": True},
            },
        )
        response = site.client.patch(
            site.path("elements", element["id"]),
            {"metadata": {"a": None, "b": {"c": 5, "d": None}, "e": ["x"]}},
        )
        assert response.status_code == 200, response.text
        expected = {"b": {"c": 5}, "keep": True, "e": ["x"]}
        assert response.json()["metadata"] == expected
        fetched = site.client.get(
            site.path("elements", element["id"]), {"min_position": response.json()["position"]}
        )
        assert fetched.json()["metadata"] == expected

    def test_element_ids_link_and_unlink(self, site: Site) -> None:
        bow = site.create("elements", {"name": "Bow", "kind": "artifact"})
        arrow = site.create("elements", {"name": "Arrow", "kind": "artifact"})
        event = site.new_event(title="Hunt", element_ids=[bow["id"]])
        path = site.path("timeline-events", event["id"])

        before = site.server.event_count()
        swapped = site.client.patch(path, {"element_ids": [arrow["id"]]})
        assert swapped.status_code == 200, swapped.text
        assert swapped.json()["element_ids"] == [arrow["id"]]
        assert site.server.event_count() == before + 2  # one unlink, one link

        both = site.client.patch(path, {"element_ids": [arrow["id"], bow["id"]]})
        assert sorted(both.json()["element_ids"]) == sorted([arrow["id"], bow["id"]])
        none = site.client.patch(path, {"element_ids": []})
        assert none.json()["element_ids"] == []
        fetched = site.client.get(path, {"min_position": none.json()["position"]})
        assert fetched.json()["element_ids"] == []
        linked = site.client.get(
            site.path("timeline-events"),
            {"element_id": bow["id"], "min_position": none.json()["position"]},
        )
        assert event["id"] not in [item["id"] for item in linked.json()["items"]]

    def test_a_reschedule_checks_end_against_the_new_start(self, site: Site) -> None:
        event = site.new_event(start={"year": 50}, end={"year": 60})
        path = site.path("timeline-events", event["id"])
        moved = site.client.patch(path, {"start": {"year": 55, "month": 2}})
        assert moved.status_code == 200, moved.text
        assert moved.json()["start"] == {"year": 55, "month": 2}
        assert moved.json()["end"] == {"year": 60}
        refused(site, lambda: site.client.patch(path, {"start": {"year": 61}}), 422, "end")


class TestWorldSettings:
    def test_rename_and_describe_raise_the_world_version(self, site: Site) -> None:
        server, client = site.server, site.client
        world = client.create("/worlds", {"name": "Draft"})
        path = f"/worlds/{world['id']}"
        renamed = client.patch(path, {"name": "Final", "description": "A real place"})
        assert renamed.status_code == 200, renamed.text
        body = renamed.json()
        assert body["name"] == "Final"
        assert body["description"] == "A real place"
        assert body["version"] > world["version"]
        assert renamed.headers["ETag"] == f'"{body["version"]}"'
        assert renamed.headers["X-Position"] == str(body["position"])
        fetched = client.get(path)
        assert fetched.json()["name"] == "Final"
        assert fetched.json()["version"] == body["version"]
        cleared = client.patch(path, {"description": None})
        assert cleared.status_code == 200, cleared.text
        assert cleared.json()["description"] is None
        assert cleared.json()["version"] > body["version"]
        refused_world = {"If_Match": f'"{world["version"]}"'}
        before = server.event_count()
        assert_problem(client.patch(path, {"name": "Stale"}, **refused_world), 412)
        assert server.event_count() == before

    def test_a_custom_calendar_changes_which_dates_are_valid(self, site: Site) -> None:
        client = site.client
        world = client.create("/worlds", {"name": "Ten moons"})
        path = f"/worlds/{world['id']}"
        branch = branch_path(world)
        timeline = client.create(f"{branch}/timelines", {"name": "Reckoning"})
        only_in_custom = {"year": 0, "month": 10, "day": 36}
        event = {"timeline_id": timeline["id"], "title": "Moonfall", "start": only_in_custom}
        assert_invalid(client.post(f"{branch}/timeline-events", event), "start")

        calendar = {
            "months": [{"name": f"Moon {i}", "days": 36} for i in range(1, 11)],
            "year_zero": True,
            "eras": [{"name": "After the Fall", "start_year": 0}],
        }
        changed = client.patch(path, {"calendar": calendar})
        assert changed.status_code == 200, changed.text
        assert changed.json()["calendar"]["year_zero"] is True
        assert len(changed.json()["calendar"]["months"]) == 10
        assert changed.json()["version"] > world["version"]

        created = client.post(f"{branch}/timeline-events", event)
        assert created.status_code == 201, created.text
        assert created.json()["start"] == only_in_custom
        eleventh = {**event, "start": {"year": 3, "month": 11}}
        assert_invalid(client.post(f"{branch}/timeline-events", eleventh), "start")
        thirty_seventh = {**event, "start": {"year": 3, "month": 2, "day": 37}}
        assert_invalid(client.post(f"{branch}/timeline-events", thirty_seventh), "start")

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"name": ""}, "name"),
            ({"name": "w" * 201}, "name"),
            ({"owner": "me"}, "owner"),
            ({"calendar": {"months": []}}, "calendar"),
            ({"calendar": {"months": [{"name": "M", "days": 0}]}}, "calendar"),
            ({"calendar": "gregorian"}, "calendar"),
        ],
        ids=["empty-name", "long-name", "unknown-field", "no-months", "zero-days", "a-string"],
    )
    def test_an_invalid_world_patch_is_a_422_and_records_nothing(
        self, site: Site, change: dict[str, Any], field: str
    ) -> None:
        path = f"/worlds/{site.world['id']}"
        body = refused(site, lambda: site.client.patch(path, change), 422)
        assert any(key == field or key.startswith(f"{field}.") for key in body["errors"]), body


class TestResponseHeaders:
    def test_success_and_problem_responses_forbid_sniffing(self, site: Site) -> None:
        ok = site.client.get(f"/worlds/{site.world['id']}")
        missing = site.client.get(site.path("locations", str(uuid4())))
        for response in (ok, missing):
            assert response.headers.get("X-Content-Type-Options") == "nosniff"
