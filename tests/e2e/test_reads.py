"""Reads over HTTP: read-your-writes, filters, in-world ranges, search, pages, time travel."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import pytest

from tests.e2e.conftest import Server, User
from tests.e2e.support import Client, assert_invalid, assert_problem, branch_path, items


@dataclass
class Lore:
    """A small world with known content; `ids` by name, read once it is projected."""

    server: Server
    client: Client
    viewer: Client
    world: dict[str, Any]
    second_world: dict[str, Any]
    ids: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    position: int = 0
    head_version: int = 0

    @property
    def branch(self) -> str:
        return branch_path(self.world)

    def add(self, collection: str, body: dict[str, Any], key: str | None = None) -> str:
        created = self.client.create(f"{self.branch}/{collection}", body)
        name = key or body.get("name") or body["title"]
        self.ids[name] = created["id"]
        self.versions[name] = created["version"]
        self.position = max(self.position, created["position"])
        self.head_version = max(self.head_version, created["version"])
        return str(created["id"])

    def fetch(self, collection: str, **params: Any) -> list[dict[str, Any]]:
        return items(
            self.client.get(
                f"{self.branch}/{collection}", {"min_position": self.position, **params}
            )
        )

    def names(self, collection: str, **params: Any) -> list[str]:
        return [item.get("name") or item["title"] for item in self.fetch(collection, **params)]


@pytest.fixture(scope="module")
def lore(server: Server, register: Callable[[], User]) -> Lore:
    owner, viewer = register(), register()
    client = Client(server, owner)
    world = client.create("/worlds", {"name": "Middle lands"})
    second = client.create("/worlds", {"name": "Second lands"})
    member = client.put(f"/worlds/{world['id']}/members/{viewer.id}", {"role": "viewer"})
    assert member.status_code == 200, member.text
    lore = Lore(server, client, Client(server, viewer), world, second)

    arda = lore.add("locations", {"name": "Arda", "kind": "continent"})
    lore.add("locations", {"name": "Beleriand", "kind": "region", "parent_id": arda})
    lore.add("locations", {"name": "Dagor", "kind": "planet"})
    lore.add("locations", {"name": "Cirith", "kind": "region", "parent_id": arda})
    lore.add("locations", {"name": "Mithril Mines", "kind": "mine"})

    frodo = lore.add(
        "elements",
        {
            "kind": "character",
            "name": "Frodo",
            "summary": "Bearer of the Ring",
            "tags": ["hobbit", "ringbearer"],
            "metadata": {"faction": "red", "age": 50},
        },
    )
    sam = lore.add(
        "elements",
        {
            "kind": "character",
            "name": "Samwise",
            "tags": ["hobbit"],
            "metadata": {"faction": "blue"},
        },
    )
    sauron = lore.add(
        "elements",
        {"kind": "maia", "name": "Sauron", "tags": ["villain"], "metadata": {"faction": "red"}},
    )
    lore.add("elements", {"kind": "artifact", "name": "Mail", "summary": "A coat of mithril"})
    lore.add("elements", {"kind": "wizard", "name": "Gandalf the Grey"}, key="Gandalf")

    chronicle = lore.add("timelines", {"name": "Chronicle"})
    second_line = lore.add("timelines", {"name": "Ledger", "description": "Of the mithril trade"})

    def event(title: str, start: dict[str, int], **more: Any) -> None:
        lore.add(
            "timeline-events",
            {"timeline_id": chronicle, "title": title, "start": start, **more},
        )

    # created out of in-world order on purpose
    event(
        "Treaty",
        {"year": 412, "month": 11, "day": 2},
        location_id=lore.ids["Beleriand"],
        element_ids=[frodo],
    )
    event("Founding", {"year": -200, "month": 3})
    event("Coronation", {"year": 1000})
    event(
        "Siege",
        {"year": -130, "month": 5, "day": 10},
        end={"year": -129, "month": 2},
        location_id=lore.ids["Cirith"],
        element_ids=[frodo, sam],
    )
    event("Harvest", {"year": 412, "month": 10}, end={"year": 412, "month": 12}, element_ids=[sam])
    event("Mithril found", {"year": 412, "month": 11, "day": 2})
    lore.add(
        "timeline-events",
        {
            "timeline_id": second_line,
            "title": "Tribute",
            "start": {"year": 500},
            "element_ids": [sauron],
        },
    )

    renamed = client.patch(
        f"{lore.branch}/elements/{lore.ids['Gandalf']}", {"name": "Gandalf the White"}
    )
    assert renamed.status_code == 200, renamed.text
    lore.versions["Gandalf renamed"] = renamed.json()["version"]
    lore.position = renamed.json()["position"]
    lore.head_version = renamed.json()["version"]
    projected = client.get(lore.branch, {"min_position": lore.position})
    assert projected.status_code == 200, projected.text
    return lore


class TestReadYourWrites:
    def test_a_new_element_is_listed_by_a_read_at_its_position(self, lore: Lore) -> None:
        for attempt in range(2):
            created = lore.client.create(
                f"{lore.branch}/elements", {"name": f"Fresh {attempt}", "kind": "rumour"}
            )
            listed = items(
                lore.client.get(
                    f"{lore.branch}/elements",
                    {"min_position": created["position"], "kind": "rumour"},
                )
            )
            assert created["id"] in [item["id"] for item in listed]
            got = lore.client.get(
                f"{lore.branch}/elements/{created['id']}", {"min_position": created["position"]}
            )
            assert got.status_code == 200, got.text
            assert got.json()["name"] == f"Fresh {attempt}"
            assert got.json()["version"] == created["version"]
            lore.position, lore.head_version = created["position"], created["version"]

    def test_a_position_far_ahead_is_a_503_with_retry_after(self, lore: Lore) -> None:
        started = time.monotonic()
        response = lore.client.get(f"{lore.branch}/elements", {"min_position": 10**12})
        waited = time.monotonic() - started
        assert_problem(response, 503)
        assert response.headers["Retry-After"].strip().isdigit()
        assert waited >= 4.0, f"answered after {waited:.1f} s, before the configured wait"


FILTERS: list[tuple[str, str, dict[str, Any], list[str]]] = [
    ("kind", "locations", {"kind": "region"}, ["Beleriand", "Cirith"]),
    ("parent", "locations", {"parent_id": "Arda"}, ["Beleriand", "Cirith"]),
    ("roots", "locations", {"parent_id": "null"}, ["Arda", "Dagor", "Mithril Mines"]),
    ("q-location", "locations", {"q": "Beleriand"}, ["Beleriand"]),
    ("tag", "elements", {"tag": "hobbit"}, ["Frodo", "Samwise"]),
    ("tag-none", "elements", {"tag": "elf"}, []),
    ("kind-element", "elements", {"kind": "character"}, ["Frodo", "Samwise"]),
    ("metadata", "elements", {"metadata": {"faction": "red"}}, ["Frodo", "Sauron"]),
    ("metadata-two-keys", "elements", {"metadata": {"faction": "red", "age": 50}}, ["Frodo"]),
    ("q-element", "elements", {"q": "Samwise"}, ["Samwise"]),
    ("q-summary", "elements", {"q": "ring"}, ["Frodo"]),
    ("timeline", "timeline-events", {"timeline_id": "Ledger"}, ["Tribute"]),
    ("element", "timeline-events", {"element_id": "Frodo"}, ["Siege", "Treaty"]),
    ("element-sam", "timeline-events", {"element_id": "Samwise"}, ["Siege", "Harvest"]),
    ("location", "timeline-events", {"location_id": "Beleriand"}, ["Treaty"]),
    ("q-event", "timeline-events", {"q": "mithril"}, ["Mithril found"]),
    ("kind-and-parent", "locations", {"kind": "region", "parent_id": "null"}, []),
]

REFERENCES = ("parent_id", "timeline_id", "element_id", "location_id")

IN_WORLD_ORDER = [
    "Founding",
    "Siege",
    "Harvest",
    "Treaty",
    "Mithril found",
    "Tribute",
    "Coronation",
]

RANGES: list[tuple[dict[str, str], list[str]]] = [
    ({"from": "-130", "to": "-130"}, ["Siege"]),
    ({"from": "412-11", "to": "412-11"}, ["Harvest", "Treaty", "Mithril found"]),
    ({"from": "412-11-02", "to": "412-11-02"}, ["Harvest", "Treaty", "Mithril found"]),
    ({"from": "412-11-03", "to": "999"}, ["Harvest", "Tribute"]),
    ({"from": "-130"}, ["Siege", "Harvest", "Treaty", "Mithril found", "Tribute", "Coronation"]),
    ({"to": "-130"}, ["Founding", "Siege"]),
    ({"from": "-129-02"}, ["Siege", "Harvest", "Treaty", "Mithril found", "Tribute", "Coronation"]),
    ({"from": "-129-03"}, ["Harvest", "Treaty", "Mithril found", "Tribute", "Coronation"]),
    ({"from": "-200-03-31", "to": "-200-03-31"}, ["Founding"]),
    ({"from": "-200-04", "to": "-131"}, []),
    ({"from": "1000-12-31"}, ["Coronation"]),
]


class TestListFilters:
    @pytest.mark.parametrize(
        ("collection", "params", "expected"),
        [case[1:] for case in FILTERS],
        ids=[case[0] for case in FILTERS],
    )
    def test_a_filter_selects_exactly_the_matching_items(
        self, lore: Lore, collection: str, params: dict[str, Any], expected: list[str]
    ) -> None:
        query = {
            key: json.dumps(value)
            if key == "metadata"
            else lore.ids.get(value, value)
            if key in REFERENCES
            else value
            for key, value in params.items()
        }
        assert lore.names(collection, **query) == expected

    def test_lists_without_filters_are_in_creation_order(self, lore: Lore) -> None:
        assert lore.names("locations") == ["Arda", "Beleriand", "Dagor", "Cirith", "Mithril Mines"]
        names = lore.names("elements")
        assert names[:5] == ["Frodo", "Samwise", "Sauron", "Mail", "Gandalf the White"]

    def test_timeline_events_are_listed_in_in_world_order(self, lore: Lore) -> None:
        assert lore.names("timeline-events") == IN_WORLD_ORDER

    def test_a_timelines_events_are_in_in_world_order(self, lore: Lore) -> None:
        response = lore.client.get(
            f"{lore.branch}/timelines/{lore.ids['Chronicle']}/events",
            {"min_position": lore.position},
        )
        titles = [item["title"] for item in items(response)]
        assert titles == [title for title in IN_WORLD_ORDER if title != "Tribute"]
        other = lore.client.get(f"{lore.branch}/timelines/{lore.ids['Ledger']}/events")
        assert [item["title"] for item in items(other)] == ["Tribute"]

    @pytest.mark.parametrize(
        ("bounds", "expected"), RANGES, ids=[json.dumps(case[0]) for case in RANGES]
    )
    def test_from_and_to_select_overlapping_spans_in_in_world_order(
        self, lore: Lore, bounds: dict[str, str], expected: list[str]
    ) -> None:
        assert lore.names("timeline-events", **bounds) == expected

    def test_a_timelines_events_take_from_and_to(self, lore: Lore) -> None:
        response = lore.client.get(
            f"{lore.branch}/timelines/{lore.ids['Chronicle']}/events",
            {"from": "412", "to": "412", "min_position": lore.position},
        )
        assert [item["title"] for item in items(response)] == ["Harvest", "Treaty", "Mithril found"]

    def test_a_returned_event_has_every_contract_field(self, lore: Lore) -> None:
        siege = next(e for e in lore.fetch("timeline-events") if e["title"] == "Siege")
        assert siege["id"] == lore.ids["Siege"]
        assert siege["timeline_id"] == lore.ids["Chronicle"]
        assert siege["start"] == {"year": -130, "month": 5, "day": 10}
        assert siege["end"] == {"year": -129, "month": 2}
        assert siege["location_id"] == lore.ids["Cirith"]
        assert sorted(siege["element_ids"]) == sorted([lore.ids["Frodo"], lore.ids["Samwise"]])
        assert siege["metadata"] == {}
        assert siege["version"] == lore.versions["Siege"]
        assert "description" in siege

    @pytest.mark.parametrize(
        ("params", "field_name"),
        [
            ({"from": "abc"}, "from"),
            ({"to": "412-13"}, "to"),
            ({"from": "412-02-30"}, "from"),
            ({"from": "0"}, "from"),
            ({"metadata": "[1]"}, "metadata"),
            ({"metadata": "{not json"}, "metadata"),
            ({"parent_id": "nowhere"}, "parent_id"),
            ({"timeline_id": "x"}, "timeline_id"),
        ],
        ids=[
            "date-not-a-date",
            "month-13",
            "february-30",
            "year-zero",
            "metadata-a-list",
            "metadata-not-json",
            "parent-not-a-uuid",
            "timeline-not-a-uuid",
        ],
    )
    def test_a_bad_filter_is_a_422_keyed_by_the_parameter(
        self, lore: Lore, params: dict[str, str], field_name: str
    ) -> None:
        collection = "locations" if field_name == "parent_id" else "timeline-events"
        assert_invalid(lore.client.get(f"{lore.branch}/{collection}", params), field_name)


class TestSearch:
    def test_search_finds_names_titles_summaries_and_descriptions(self, lore: Lore) -> None:
        response = lore.client.get(
            f"{lore.branch}/search", {"q": "mithril", "min_position": lore.position}
        )
        found = items(response)
        expected = {
            lore.ids["Mithril Mines"]: "locations",
            lore.ids["Mail"]: "elements",
            lore.ids["Ledger"]: "timelines",
            lore.ids["Mithril found"]: "timeline-events",
        }
        assert sorted(item["id"] for item in found) == sorted(expected)
        for item in found:
            assert item["collection"].replace("_", "-") == expected[item["id"]], item

    def test_search_without_a_match_is_empty_and_without_q_is_a_422(self, lore: Lore) -> None:
        assert items(lore.client.get(f"{lore.branch}/search", {"q": "balrog"})) == []
        assert_invalid(lore.client.get(f"{lore.branch}/search"), "q")


def walk(client: Client, path: str, **params: Any) -> tuple[list[str], int]:
    """Every item id of a list, page by page; and how many pages it took."""
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        assert len(body["items"]) <= params["limit"]
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages
        assert isinstance(cursor, str) and cursor
        assert pages < 50, "pagination does not end"


class TestPagination:
    @pytest.mark.parametrize("collection", ["locations", "elements", "timeline-events"])
    def test_walking_pages_of_two_gives_every_item_exactly_once(
        self, lore: Lore, collection: str
    ) -> None:
        everything = [item["id"] for item in lore.fetch(collection, limit=200)]
        assert len(everything) >= 5
        paged, pages = walk(
            lore.client, f"{lore.branch}/{collection}", limit=2, min_position=lore.position
        )
        assert paged == everything
        assert len(set(paged)) == len(paged)
        assert pages >= (len(everything) + 1) // 2

    def test_walking_search_results_one_at_a_time(self, lore: Lore) -> None:
        paged, _ = walk(lore.client, f"{lore.branch}/search", q="mithril", limit=1)
        assert len(paged) == 4
        assert len(set(paged)) == 4

    def test_walking_a_filtered_list_keeps_the_filter(self, lore: Lore) -> None:
        paged, _ = walk(lore.client, f"{lore.branch}/elements", tag="hobbit", limit=1)
        assert paged == [lore.ids["Frodo"], lore.ids["Samwise"]]

    def test_the_default_page_holds_50_items(self, lore: Lore) -> None:
        world = lore.client.create("/worlds", {"name": "Crowded"})
        path = f"{branch_path(world)}/timelines"
        last: dict[str, Any] = {}
        for number in range(51):
            last = lore.client.create(path, {"name": f"Line {number:02d}"})
        first = lore.client.get(path, {"min_position": last["position"]})
        page = first.json()
        assert first.status_code == 200, first.text
        assert [item["name"] for item in page["items"]] == [f"Line {n:02d}" for n in range(50)]
        assert page["next_cursor"]
        rest = items(lore.client.get(path, {"cursor": page["next_cursor"]}))
        assert [item["name"] for item in rest] == ["Line 50"]

    def test_the_last_page_has_a_null_cursor(self, lore: Lore) -> None:
        response = lore.client.get(f"{lore.branch}/locations", {"limit": 200})
        assert response.json()["next_cursor"] is None
        assert len(response.json()["items"]) == 5

    @pytest.mark.parametrize("limit", ["0", "201", "-1", "ten"])
    def test_a_limit_outside_1_to_200_is_a_422(self, lore: Lore, limit: str) -> None:
        assert_invalid(lore.client.get(f"{lore.branch}/elements", {"limit": limit}), "limit")

    def test_limits_of_1_and_200_are_accepted(self, lore: Lore) -> None:
        assert len(items(lore.client.get(f"{lore.branch}/elements", {"limit": 1}))) == 1
        assert len(items(lore.client.get(f"{lore.branch}/elements", {"limit": 200}))) >= 5

    def test_a_cursor_not_handed_out_is_a_422(self, lore: Lore) -> None:
        assert_invalid(lore.client.get(f"{lore.branch}/elements", {"cursor": "!!!"}), "cursor")
        assert_invalid(
            lore.client.get(f"{lore.branch}/elements", {"cursor": "bm90IGEgY3Vyc29y"}), "cursor"
        )

    def test_a_cursor_of_another_list_is_a_422(self, lore: Lore) -> None:
        page = lore.client.get(f"{lore.branch}/locations", {"limit": 1}).json()
        assert page["next_cursor"]
        response = lore.client.get(f"{lore.branch}/elements", {"cursor": page["next_cursor"]})
        assert_invalid(response, "cursor")

    @pytest.mark.parametrize("value", [["x"], [1, 2], []], ids=["text-key", "two-keys", "no-key"])
    def test_a_decodable_cursor_with_a_foreign_key_is_a_422(
        self, lore: Lore, value: list[Any]
    ) -> None:
        raw = json.dumps({"k": "elements", "v": value}, separators=(",", ":")).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        response = lore.client.get(f"{lore.branch}/elements", {"cursor": cursor})
        assert_invalid(response, "cursor")

    def test_a_list_etag_answers_304_when_unchanged(self, lore: Lore) -> None:
        path = f"{lore.branch}/locations"
        first = lore.client.get(path, {"kind": "region"})
        assert first.status_code == 200, first.text
        etag = first.headers["ETag"]
        assert etag.startswith('"') and etag.endswith('"')
        again = lore.client.get(path, {"kind": "region"}, If_None_Match=etag)
        assert again.status_code == 304
        assert again.content == b""
        other = lore.client.get(path, {"kind": "planet"}, If_None_Match=etag)
        assert other.status_code == 200


class TestTimeTravel:
    def test_an_entity_reads_as_it_stood_at_a_version(self, lore: Lore) -> None:
        path = f"{lore.branch}/elements/{lore.ids['Gandalf']}"
        created, renamed = lore.versions["Gandalf"], lore.versions["Gandalf renamed"]
        then = lore.client.get(path, {"as_of_version": created, "min_position": lore.position})
        assert then.status_code == 200, then.text
        assert then.json()["name"] == "Gandalf the Grey"
        assert then.json()["version"] == created
        assert then.headers["ETag"] == f'"{created}"'
        before_rename = lore.client.get(path, {"as_of_version": renamed - 1})
        assert before_rename.json()["name"] == "Gandalf the Grey"
        now = lore.client.get(path, {"as_of_version": renamed})
        assert now.json()["name"] == "Gandalf the White"
        assert lore.client.get(path).json()["name"] == "Gandalf the White"

    def test_an_entity_before_its_creation_is_404(self, lore: Lore) -> None:
        path = f"{lore.branch}/elements/{lore.ids['Gandalf']}"
        assert_problem(lore.client.get(path, {"as_of_version": lore.versions["Gandalf"] - 1}), 404)
        assert_problem(lore.client.get(path, {"as_of_version": 0}), 404)

    def test_a_list_reads_as_it_stood_at_a_version(self, lore: Lore) -> None:
        at = lore.versions["Sauron"]
        names = lore.names("elements", as_of_version=at)
        assert names == ["Frodo", "Samwise", "Sauron"]
        assert lore.names("locations", as_of_version=lore.versions["Dagor"]) == [
            "Arda",
            "Beleriand",
            "Dagor",
        ]
        assert lore.names("locations", as_of_version=0) == []
        renamed = lore.names("elements", as_of_version=lore.versions["Gandalf"])
        assert renamed[-1] == "Gandalf the Grey"

    def test_filters_and_search_apply_as_of_a_version(self, lore: Lore) -> None:
        before_events = lore.versions["Treaty"] - 1
        assert lore.names("timeline-events", as_of_version=before_events) == []
        assert lore.names("elements", tag="hobbit", as_of_version=lore.versions["Frodo"]) == [
            "Frodo"
        ]
        hits = items(
            lore.client.get(
                f"{lore.branch}/search", {"q": "mithril", "as_of_version": lore.versions["Mail"]}
            )
        )
        assert sorted(hit["id"] for hit in hits) == sorted(
            [lore.ids["Mithril Mines"], lore.ids["Mail"]]
        )

    @pytest.mark.parametrize("what", ["entity", "list", "search", "timeline-events"])
    def test_a_version_above_the_head_is_a_422(self, lore: Lore, what: str) -> None:
        path = {
            "entity": f"{lore.branch}/elements/{lore.ids['Frodo']}",
            "list": f"{lore.branch}/elements",
            "search": f"{lore.branch}/search?q=mithril",
            "timeline-events": f"{lore.branch}/timelines/{lore.ids['Chronicle']}/events",
        }[what]
        branch = lore.client.get(lore.branch, {"min_position": lore.position}).json()
        above = branch["head_version"] + 1000
        assert_invalid(lore.client.get(path, {"as_of_version": above}), "as_of_version")


class TestWorldsAndBranches:
    def test_my_worlds_are_listed_with_my_role(self, lore: Lore) -> None:
        mine = items(lore.client.get("/worlds"))
        roles = {world["id"]: world["role"] for world in mine}
        assert roles[lore.world["id"]] == "owner"
        assert roles[lore.second_world["id"]] == "owner"
        listed = next(world for world in mine if world["id"] == lore.world["id"])
        assert listed["name"] == "Middle lands"
        assert listed["default_branch"] == "main"
        for name in ("description", "calendar", "created_at", "version"):
            assert name in listed
        theirs = items(lore.viewer.get("/worlds"))
        assert [(w["id"], w["role"]) for w in theirs] == [(lore.world["id"], "viewer")]

    def test_my_worlds_come_in_pages(self, lore: Lore) -> None:
        everything = [world["id"] for world in items(lore.client.get("/worlds", {"limit": 200}))]
        paged, pages = walk(lore.client, "/worlds", limit=1)
        assert paged == everything
        assert paged[:2] == [lore.world["id"], lore.second_world["id"]]
        assert pages >= len(everything)
        assert_invalid(lore.client.get("/worlds", {"limit": 0}), "limit")
        assert_invalid(lore.client.get("/worlds", {"cursor": "garbage!"}), "cursor")

    def test_the_branches_of_a_world_are_listed(self, lore: Lore) -> None:
        response = lore.client.get(
            f"/worlds/{lore.world['id']}/branches", {"min_position": lore.position}
        )
        listed = items(response)
        assert [branch["name"] for branch in listed] == ["main"]
        assert listed[0]["forked_from"] is None
        assert listed[0]["head_version"] == lore.head_version

    def test_main_has_its_head_version_and_no_parent(self, lore: Lore) -> None:
        response = lore.client.get(lore.branch, {"min_position": lore.position})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["name"] == "main"
        assert body["forked_from"] is None
        assert body["head_version"] == lore.head_version

    def test_a_new_worlds_main_branch_starts_at_version_0(self, lore: Lore) -> None:
        world = lore.client.create("/worlds", {"name": f"Empty {uuid4().hex[:6]}"})
        response = lore.client.get(branch_path(world), {"min_position": world["position"]})
        assert response.status_code == 200, response.text
        assert response.json()["head_version"] == 0
        assert items(lore.client.get(f"{branch_path(world)}/locations")) == []
