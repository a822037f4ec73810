"""Changes folded in memory within a batch, and batches read ahead while catching up.

Whatever the batch size (so whatever is folded: a row added and closed in one batch, an
entity changed in batch N and again in N+1, a fork and the fork's own changes), the read
tables must equal a rebuild one event at a time; and a batch read ahead must never be
applied when the projection moved on meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, select, text

from commands.application import WorldHistory
from commands.dates import Calendar
from commands.messages import AddEntity, Command, CreateWorld, ForkBranch, RemoveEntity
from commands.messages import UpdateEntity as Update
from commands.provenance import Provenance
from projections import tables as t
from projections.content_rows import Ordinals, ordinals
from projections.read_ahead import ReadAhead
from projections.runner import ProjectionRunner
from tests.integration.readside import differences, dump_read_tables, migrated

AWKWARD = 'tab\there, new\nline, back\\slash \\N "quoted" é ✓'
ACTOR = "actor\twith\\odd\ntext"


@pytest.fixture
def fresh(database_factory: Callable[[str], str]) -> Iterator[tuple[Engine, WorldHistory]]:
    with migrated(database_factory, "pearl_folding") as made:
        yield made


def commands(world: UUID, owner: str) -> list[Command]:
    """Adds, updates and removals of one entity back to back (one batch folds them), an
    entity changed across many batches, a fork with its own changes, awkward text."""
    gone, kept, busy, te, tl = (str(uuid4()) for _ in range(5))
    out: list[Command] = [CreateWorld(world, owner_id=owner, name="Folding")]
    out += [
        AddEntity(world, "main", "elements", gone, {"kind": "k", "name": "Gone"}),
        Update(world, "main", "elements", gone, {"metadata": {"a": 1, "b": {"c": 2}}}),
        Update(world, "main", "elements", gone, {"metadata": {"b": {"c": None}}}),
        RemoveEntity(world, "main", "elements", gone),
        AddEntity(world, "main", "elements", kept, {"kind": "k", "name": AWKWARD}),
        Update(world, "main", "elements", kept, {"tags": [AWKWARD, "t"], "summary": AWKWARD}),
        AddEntity(world, "main", "elements", busy, {"kind": "k", "name": "Busy"}),
        AddEntity(world, "main", "timelines", tl, {"name": "Age"}),
        AddEntity(
            world,
            "main",
            "timeline_events",
            te,
            {"timeline_id": tl, "title": "T", "start": {"year": 3}, "metadata": {"x": AWKWARD}},
        ),
    ]
    out += [Update(world, "main", "elements", busy, {"metadata": {"n": n}}) for n in range(7)]
    out += [
        ForkBranch(world, "alt", "main"),
        Update(world, "alt", "elements", busy, {"name": "Busy on alt"}),
        Update(world, "alt", "timeline_events", te, {"title": "T on alt"}),
        Update(world, "main", "elements", busy, {"name": "Busy on main"}),
        RemoveEntity(world, "alt", "elements", kept),
        AddEntity(world, "alt", "elements", gone, {"kind": "k", "name": "Back on alt"}),
        Update(world, "alt", "elements", gone, {"summary": "then changed"}),
    ]
    return out


def write_story(history: WorldHistory) -> UUID:
    world, owner = uuid4(), str(uuid4())
    actor = Provenance(actor=ACTOR, correlation_id=AWKWARD)
    for command in commands(world, owner):
        history.handle(command, actor)
    return world


@pytest.mark.parametrize("batch_size", [2, 3, 5, 1000])
def test_any_batch_size_projects_what_one_event_at_a_time_projects(
    fresh: tuple[Engine, WorldHistory], batch_size: int
) -> None:
    engine, history = fresh
    write_story(history)
    ProjectionRunner(engine, history, batch_size=1).catch_up()
    one_by_one = dump_read_tables(engine)
    runner = ProjectionRunner(engine, history, batch_size=batch_size)
    assert runner.rebuild() == runner.head()
    assert differences(one_by_one, dump_read_tables(engine)) == {}
    with engine.connect() as conn:
        kept = conn.execute(
            select(t.elements.c.name, t.elements.c.tags, t.elements.c.summary).where(
                t.elements.c.name == AWKWARD, t.elements.c.valid_to.is_(None)
            )
        ).all()
        actors = set(conn.execute(select(t.changes.c.actor).distinct()).scalars())
        correlations = set(conn.execute(select(t.changes.c.correlation_id)).scalars())
        gone_rows = conn.execute(
            text("SELECT count(*) FROM rm_elements WHERE name = 'Gone' AND valid_to IS NULL")
        ).scalar_one()
    assert kept == [(AWKWARD, [AWKWARD, "t"], AWKWARD)]  # main's; alt removed its copy
    assert actors == {ACTOR}
    assert correlations == {AWKWARD}
    assert gone_rows == 0


def test_a_batch_read_ahead_is_dropped_when_another_runner_applied_it_first(
    fresh: tuple[Engine, WorldHistory],
) -> None:
    engine, history = fresh
    write_story(history)
    ahead_runner = ProjectionRunner(engine, history, batch_size=4)
    other = ProjectionRunner(engine, history, batch_size=4)
    reads: list[int] = []

    def fetch(after: int, limit: int) -> Any:
        reads.append(after)
        return ahead_runner._fetch(after, limit)

    ahead = ReadAhead(fetch)
    ahead_runner._ahead = ahead
    try:
        assert ahead_runner.run_batch(4) == 4  # and reads the next 4 ahead
        assert reads == [4]
        assert other.run_batch(4) == 4  # applies those 4 itself
        assert ahead_runner.run_batch(4) == 4  # so the read-ahead ones are dropped
        assert reads == [4, 12]
        assert ahead_runner.position() == 12
    finally:
        ahead_runner._ahead = None
        ahead.close()
    ahead_runner.catch_up()
    caught_up = dump_read_tables(engine)
    with engine.connect() as conn:
        logged = conn.execute(select(t.changes.c.position).order_by(t.changes.c.position))
        positions = list(logged.scalars())
    assert positions == list(range(1, ahead_runner.head() + 1))
    ahead_runner.rebuild()
    assert differences(caught_up, dump_read_tables(engine)) == {}


def test_catch_up_reads_each_batch_once_and_in_order(
    fresh: tuple[Engine, WorldHistory], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, history = fresh
    write_story(history)
    runner = ProjectionRunner(engine, history, batch_size=3)
    reads: list[tuple[int, int]] = []
    fetch = runner._fetch

    def recording(after: int, limit: int) -> Any:
        reads.append((after, limit))
        return fetch(after, limit)

    monkeypatch.setattr(runner, "_fetch", recording)
    head = runner.head()
    assert runner.catch_up() == head
    assert [after for after, _ in reads] == list(range(0, head + 1, 3))
    assert runner._ahead is None


def test_remembered_ordinals_are_the_calendars_own() -> None:
    calendar = Calendar.from_dict(
        {"months": [{"name": "A", "days": 30}, {"name": "B", "days": 5}], "year_zero": False}
    )
    spans = Ordinals(calendar)
    dates: list[tuple[Any, Any]] = [
        ({"year": 3}, None),
        ({"year": 3, "month": 2}, {"year": 4}),
        ({"month": 2, "year": 3}, None),  # the same date, keys in another order
        ({"year": -7, "month": 1, "day": 30}, {"year": 2, "month": 2, "day": 5}),
        ({"year": 3, "month": 9}, None),  # no such month: (0, 0)
        ({"year": 3.0}, None),  # not a plain int date: computed, never remembered
        ({"year": [3]}, None),
    ]
    for _ in range(2):  # the second round answers from memory
        for start, end in dates:
            assert spans(start, end) == ordinals(calendar, start, end)
    assert spans({"year": 3.0}, None) == (2 * 35.0, 2 * 35.0 + 34)
    assert spans({"year": 3, "month": 9}, None) == (0, 0)
