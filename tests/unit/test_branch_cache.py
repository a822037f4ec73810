"""The cache of branches between commands: bounded by count and by the entities it holds,
least recently used out first; a branch bigger than the whole budget is not kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands import application
from commands.application import BRANCH_CACHE_ENTITIES, WorldHistory
from commands.branch_cache import AggregateCache
from commands.messages import AddEntity, CreateWorld
from commands.provenance import Provenance
from commands.world import branch_id


@dataclass
class Fake:
    size: int
    id: UUID = field(default_factory=uuid4)
    pending_events: list[Any] = field(default_factory=list)


def kept(cache: AggregateCache[Fake], *aggregates: Fake) -> None:
    """Lend each to a command that ends consistent (as a saved or untouched aggregate)."""
    for aggregate in aggregates:
        cache.begin()
        cache.lent(aggregate)
        cache.end(consistent=True)


def cached(cache: AggregateCache[Fake], *aggregates: Fake) -> list[bool]:
    return [a.id in cache for a in aggregates]


def sized(maxsize: int = 64, budget: int | None = 100) -> AggregateCache[Fake]:
    return AggregateCache(maxsize, budget=budget, weight=lambda fake: fake.size)


class TestTheEntityBudget:
    def test_evicts_the_least_recently_used_until_the_total_fits(self) -> None:
        cache = sized()
        a, b, c = Fake(40), Fake(40), Fake(30)
        kept(cache, a, b)
        cache.begin()
        assert cache.take(a.id) is a  # a is now the most recently used
        cache.lent(a)
        cache.end(consistent=True)
        kept(cache, c)  # 110 > 100: b, the least recently used, goes
        assert cached(cache, a, b, c) == [True, False, True]
        assert cache.total == 70

    def test_a_branch_bigger_than_the_budget_is_not_kept_and_evicts_nothing(self) -> None:
        cache = sized()
        small, huge = Fake(60), Fake(101)
        kept(cache, small, huge)
        assert cached(cache, small, huge) == [True, False]
        assert cache.total == 60

    def test_a_branch_that_grew_past_the_budget_is_dropped_when_it_comes_back(self) -> None:
        cache = sized()
        branch = Fake(90)
        kept(cache, branch)
        cache.begin()
        assert cache.take(branch.id) is branch
        branch.size = 120
        cache.lent(branch)
        cache.end(consistent=True)
        assert len(cache) == 0 and cache.total == 0

    def test_the_count_still_bounds_it(self) -> None:
        cache = sized(maxsize=2, budget=None)
        a, b, c = Fake(1), Fake(1), Fake(1)
        kept(cache, a, b, c)
        assert cached(cache, a, b, c) == [False, True, True]

    def test_given_back_it_is_cached_and_no_longer_lent(self) -> None:
        cache = sized()
        branch = Fake(10)
        kept(cache, branch)
        cache.begin()
        taken = cache.take(branch.id)
        assert taken is branch
        cache.lent(branch)
        cache.give_back(branch)
        assert branch.id in cache
        branch.pending_events.append("changed later")  # what is no longer lent stays out
        cache.end(consistent=False)
        assert branch.id in cache and cache.total == 10

    def test_nothing_is_lent_outside_a_command(self) -> None:
        cache = sized()
        branch = Fake(10)
        kept(cache, branch)
        assert cache.take(branch.id) is None
        assert branch.id in cache


class TestTheSetting:
    def test_bounds_the_applications_branch_cache(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("BRANCH_CACHE_ENTITIES", "1234")
        app = WorldHistory()
        assert app.branch_cache.budget == 1234

    def test_defaults_to_room_for_a_100k_entity_branch(self) -> None:
        app = WorldHistory()
        assert app.branch_cache.budget == BRANCH_CACHE_ENTITIES >= 100_000


class TestMakingRoom:
    def test_evicts_the_least_recently_used_until_the_weight_fits(self) -> None:
        cache = sized()
        a, b = Fake(40), Fake(40)
        kept(cache, a, b)
        cache.make_room(30)
        assert cached(cache, a, b) == [False, True]
        cache.make_room(500)  # more than the budget: everything goes
        assert len(cache) == 0 and cache.total == 0


class TestLoadingABranch:
    def test_pages_through_its_stream_and_makes_room_as_it_grows(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(application, "LOAD_PAGE", 2)
        monkeypatch.setenv("BRANCH_CACHE_ENTITIES", "8")
        app = WorldHistory()
        small, big = uuid4(), uuid4()
        for world_id, count in ((small, 3), (big, 7)):
            app.handle(CreateWorld(world_id, "a", "W"), Provenance("a"))
            for n in range(count):
                fields = {"name": f"e{n}", "kind": "k"}
                app.handle(
                    AddEntity(world_id, "main", "elements", f"e{n}", fields), Provenance("a")
                )
        small_id, big_id = branch_id(small, "main"), branch_id(big, "main")
        assert big_id in app.branch_cache and small_id not in app.branch_cache  # 3 + 7 > 8
        app.branch_cache.begin()
        app.branch_cache.take(big_id)  # a load from scratch now
        app.branch_cache.end(consistent=False)
        app.handle(
            AddEntity(small, "main", "elements", "e3", {"name": "x", "kind": "k"}), Provenance("a")
        )
        assert small_id in app.branch_cache
        cache = app.branch_cache
        seen: list[tuple[int, bool]] = []
        make_room = cache.make_room

        def spied(weight: int) -> None:
            make_room(weight)
            seen.append((weight, small_id in cache))

        monkeypatch.setattr(cache, "make_room", spied)
        branch = app.load_branch(big_id)  # pages of 2: room made for it as it grew
        assert sorted(branch.entities["elements"]) == [f"e{n}" for n in range(7)]
        assert seen == [(2, True), (4, True), (6, False)]  # 4 + 6 > 8: the small one went
        as_of = app.load_branch(big_id, version=3)
        assert sorted(as_of.entities["elements"]) == ["e0", "e1", "e2"]
        assert as_of.head_version == 3


class TestEntityMemory:
    def test_a_loaded_branch_holds_each_field_name_once(self) -> None:
        app = WorldHistory()
        world_id = uuid4()
        app.handle(CreateWorld(world_id, "a", "W"), Provenance("a"))
        for n in range(2):
            fields = {"name": f"e{n}", "kind": "k", "metadata": {"faction": "f", "rank": n}}
            app.handle(AddEntity(world_id, "main", "elements", f"e{n}", fields), Provenance("a"))
        app.branch_cache.begin()
        app.branch_cache.take(branch_id(world_id, "main"))  # loaded from its events below
        app.branch_cache.end(consistent=False)
        one, two = app.load_branch(branch_id(world_id, "main")).entities["elements"].values()
        assert one["metadata"] == {"faction": "f", "rank": 0}
        assert [id(k) for k in one] == [id(k) for k in two]
        assert [id(k) for k in one["metadata"]] == [id(k) for k in two["metadata"]]
