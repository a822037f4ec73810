"""Time travel equals replay: for random command sequences, every `as_of_version` read of the
read tables answers exactly what replaying the event store up to that version gives."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine

from commands.application import WorldHistory
from commands.errors import DomainError
from commands.messages import (
    AddEntity,
    Command,
    CreateWorld,
    ForkBranch,
    MergeBranch,
    RemoveEntity,
    RevertBranch,
    UpdateEntity,
)
from commands.provenance import Provenance
from commands.world import branch_id
from projections.runner import ProjectionRunner
from queries.content import Filters, list_entities

COLLECTIONS = ("locations", "elements", "timelines", "timeline_events")
IDS = [str(UUID(int=n)) for n in range(1, 5)]
ACTOR = Provenance(actor="property-test")

names = st.sampled_from(["Ash", "Birch", "Cedar", "Dune"])
ids = st.sampled_from(IDS)
dates = st.builds(
    lambda y, m: {"year": y, "month": m}, st.sampled_from([-3, -2, -1, 1, 2, 3]), st.integers(1, 12)
)
metadata = st.dictionaries(
    st.sampled_from(["a", "b", "c"]), st.one_of(st.integers(0, 3), st.none()), max_size=2
)


def _fields(collection: str, draw: Any) -> dict[str, Any]:
    if collection == "locations":
        return {
            "name": draw(names),
            "kind": "place",
            "parent_id": draw(st.none() | ids),
            "metadata": draw(metadata.map(_no_nulls)),
        }
    if collection == "elements":
        return {
            "name": draw(names),
            "kind": "character",
            "tags": draw(st.lists(names, max_size=2)),
            "metadata": draw(metadata.map(_no_nulls)),
        }
    if collection == "timelines":
        return {"name": draw(names), "description": draw(st.none() | names)}
    return {
        "timeline_id": draw(ids),
        "title": draw(names),
        "start": draw(dates),
        "end": draw(st.none() | dates),
        "location_id": draw(st.none() | ids),
        "element_ids": draw(st.lists(ids, max_size=2, unique=True)),
        "metadata": draw(metadata.map(_no_nulls)),
    }


def _no_nulls(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None}


def _patch(collection: str, draw: Any) -> dict[str, Any]:
    full = _fields(collection, draw)
    keys = draw(st.lists(st.sampled_from(sorted(full)), min_size=1, max_size=3, unique=True))
    patch = {k: full[k] for k in keys}
    if "metadata" in patch:
        patch["metadata"] = draw(metadata)  # a merge patch: nulls remove keys
    return patch


@st.composite
def steps(draw: Any) -> list[tuple[str, Any]]:
    """A sequence of (branch, command-builder) steps; some of them will be refused."""
    result: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(4, 18))):
        kind = draw(st.sampled_from(["add", "add", "update", "remove", "fork", "merge", "revert"]))
        branch = draw(st.sampled_from(["main", "alt"]))
        collection = draw(st.sampled_from(COLLECTIONS))
        entity = draw(ids)
        if kind == "add":
            result.append((branch, ("add", collection, entity, _fields(collection, draw))))
        elif kind == "update":
            result.append((branch, ("update", collection, entity, _patch(collection, draw))))
        elif kind == "remove":
            result.append((branch, ("remove", collection, entity, draw(st.booleans()))))
        elif kind == "fork":
            result.append(("main", ("fork", draw(st.integers(0, 6)))))
        elif kind == "merge":
            result.append((branch, ("merge",)))
        else:
            result.append((branch, ("revert", draw(st.integers(0, 8)))))
    return result


def _command(world_id: UUID, branch: str, step: tuple[Any, ...]) -> Command:
    match step:
        case ("add", collection, entity, fields):
            return AddEntity(world_id, branch, collection, entity, fields)
        case ("update", collection, entity, patch):
            return UpdateEntity(world_id, branch, collection, entity, patch)
        case ("remove", collection, entity, cascade):
            return RemoveEntity(world_id, branch, collection, entity, cascade=cascade)
        case ("fork", at):
            return ForkBranch(world_id, "alt", "main", at)
        case ("merge",):
            return MergeBranch(world_id, branch, "alt" if branch == "main" else "main")
        case ("revert", to):
            return RevertBranch(world_id, branch, to)
    raise AssertionError(step)


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the session's migrated database."""
    created = create_engine(database_url)
    yield created
    created.dispose()


@pytest.fixture(scope="module")
def history(database_url: str) -> WorldHistory:
    """The write side on the session's database."""
    return WorldHistory.on_database(database_url)


def _read_state(engine: Engine, stream: UUID, version: int) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for collection in COLLECTIONS:
            items, cursor = list_entities(
                conn, stream, collection, Filters(), limit=200, cursor=None, as_of=version
            )
            assert cursor is None
            state[collection] = {item["id"]: item for item in items}
    return state


def _replayed_state(history: WorldHistory, stream: UUID, version: int) -> dict[str, dict[str, Any]]:
    entities = history.load_branch(stream, version).entities
    return {c: {i: dict(e) for i, e in entities[c].items()} for c in COLLECTIONS}


class TestTimeTravelEqualsReplay:
    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(script=steps())
    def test_every_version_of_every_branch_reads_as_replay_gives(
        self, script: list[tuple[str, Any]], history: WorldHistory, engine: Engine
    ) -> None:
        world_id = uuid4()
        history.handle(CreateWorld(world_id, str(uuid4()), "Property world"), ACTOR)
        for branch, step in script:
            with contextlib.suppress(DomainError):  # a refusal records nothing
                history.handle(_command(world_id, branch, step), ACTOR)
        ProjectionRunner(engine, history).catch_up()
        world = history.world(world_id)
        event(f"branches: {len(world.branches)}")
        for name in world.branches:
            stream = branch_id(world_id, name)
            head = history.load_branch(stream).head_version
            for version in range(head + 1):
                assert _read_state(engine, stream, version) == _replayed_state(
                    history, stream, version
                ), f"{name}@{version}"
