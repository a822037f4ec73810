"""The real projector process (`python -m projections`) killed at random instants.

A backlog of a few thousand events is recorded first; projector processes are then started
and SIGKILLed at random instants while they catch up, until one is allowed to finish and is
stopped with SIGTERM. The read tables must then equal, row for row, those of a fresh rebuild.
A second case starts two projectors at once: only one may hold the lock and write.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, create_engine, text

from commands.application import WorldHistory
from commands.messages import (
    AddEntity,
    Command,
    CreateWorld,
    ForkBranch,
    MergeBranch,
    RemoveEntity,
    SetMemberRole,
    UpdateEntity,
    UpdateWorld,
)
from commands.provenance import Provenance
from pearl.migrate import upgrade
from projections.runner import ProjectionRunner
from tests.integration.readside import (
    Projectors,
    differences,
    dump_read_tables,
    local_tcp_ports,
    poll,
    projectors,
)

SEED = int(os.environ.get("PROJECTOR_CRASH_SEED", "20261126"))
BACKLOG_WORLDS = 9
KILLS = 7

# Settings that keep the in-process writer fast: it is the only writer of this database.
FAST_WRITER = {"AGGREGATE_CACHE_MAXSIZE": "1000", "AGGREGATE_CACHE_FASTFORWARD": "n"}


def world_commands(
    rng: random.Random, world_id: UUID, owner: str, drop_timeline: bool = False
) -> Iterator[Command]:
    """One world's worth of varied commands (~350 events): big cascades, a fork, a merge."""

    def new_id() -> str:
        return str(uuid4())

    yield CreateWorld(world_id, owner_id=owner, name=f"World {rng.randrange(10**6)}")
    for role in ("editor", "viewer", "auditor"):
        yield SetMemberRole(world_id, new_id(), role)
    root, timeline = new_id(), new_id()
    yield AddEntity(world_id, "main", "locations", root, {"name": "Root", "kind": "planet"})
    yield AddEntity(world_id, "main", "timelines", timeline, {"name": "Ages"})
    places = [new_id() for _ in range(30)]
    for n, place in enumerate(places):
        parent = root if n < 10 else rng.choice(places[:n])
        place_fields: dict[str, Any] = {"name": f"Place {n}", "kind": "city", "parent_id": parent}
        yield AddEntity(world_id, "main", "locations", place, place_fields)
    elements = [new_id() for _ in range(30)]
    for n, element in enumerate(elements):
        fields: dict[str, Any] = {
            "kind": rng.choice(["character", "faction", "artifact"]),
            "name": f"Element {n}",
            "tags": rng.sample(["red", "green", "blue", "old"], 2),
            "metadata": {"rank": n, "nested": {"a": n % 3}},
        }
        yield AddEntity(world_id, "main", "elements", element, fields)
    events = [new_id() for _ in range(50)]
    for n, event in enumerate(events):
        start = {"year": rng.randint(-500, 500) or 1, "month": rng.randint(1, 12)}
        fields = {
            "timeline_id": timeline,
            "title": f"Event {n}",
            "start": start,
            "location_id": rng.choice(places),
            "element_ids": rng.sample(elements, 3),
        }
        yield AddEntity(world_id, "main", "timeline_events", event, fields)
    for n in range(20):
        changes = {"summary": f"Revised {n}", "metadata": {"nested": {"b": n}, "rank": None}}
        yield UpdateEntity(world_id, "main", "elements", rng.choice(elements), changes)
    for _ in range(10):  # title, reschedule, unlink and link: four events in one command
        year = rng.randint(1, 900)
        changes = {
            "title": f"Moved {year}",
            "start": {"year": year},
            "end": {"year": year + 5},
            "element_ids": rng.sample(elements, 2),
        }
        yield UpdateEntity(world_id, "main", "timeline_events", rng.choice(events), changes)
    yield ForkBranch(world_id, "alt", "main")  # copies every current row of main
    for element in rng.sample(elements, 5):
        yield UpdateEntity(world_id, "alt", "elements", element, {"name": f"Alt {element[:8]}"})
    yield MergeBranch(world_id, target="main", source="alt")
    yield UpdateEntity(world_id, "alt", "timelines", timeline, {"description": "Only on alt"})
    yield UpdateWorld(world_id, {"name": "Renamed", "description": "Grown by the crash test"})
    yield RemoveEntity(world_id, "main", "locations", root, cascade=True)
    for element in rng.sample(elements, 10):
        yield RemoveEntity(world_id, "main", "elements", element, cascade=True)
    if drop_timeline:
        yield RemoveEntity(world_id, "main", "timelines", timeline, cascade=True)


class KeptBranches:
    """Keeps each branch aggregate between commands instead of replaying its stream each time.

    Only for recording the backlog, where the test is the one writer and every command is
    valid: `WorldHistory.branch` replays the whole stream on each call, which would make
    recording a few thousand events take minutes.
    """

    def __init__(self, history: WorldHistory) -> None:
        self.load = history.branch
        self.kept: dict[tuple[UUID, str], Any] = {}

    def __call__(self, world: Any, name: str) -> Any:
        key = (world.id, name)
        if key not in self.kept:
            self.kept[key] = self.load(world, name)
        return self.kept[key]


def record_backlog(history: WorldHistory, rng: random.Random, worlds: int) -> None:
    owner = str(uuid4())
    actor = Provenance(actor=owner, correlation_id="backlog")
    kept = KeptBranches(history)
    history.branch = kept  # type: ignore[method-assign]
    try:
        for n in range(worlds):
            for command in world_commands(rng, uuid4(), owner, drop_timeline=n % 2 == 1):
                history.handle(command, actor)
                if isinstance(command, (ForkBranch, MergeBranch)):
                    kept.kept.clear()  # these load branches their own way
    finally:
        del history.branch


@dataclass
class Database:
    url: str
    engine: Engine
    history: WorldHistory

    def runner(self) -> ProjectionRunner:
        return ProjectionRunner(self.engine, self.history)

    def event_ids(self) -> list[int]:
        with self.engine.connect() as conn:
            return list(conn.execute(text("SELECT id FROM pearl_events ORDER BY id")).scalars())

    def snapshot(self) -> tuple[int, int, int]:
        """(position, change rows, events up to position), read in one snapshot."""
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    "WITH p AS (SELECT coalesce(max(position), 0) AS position"
                    "  FROM projection_positions WHERE name = 'read_model')"
                    " SELECT p.position,"
                    "  (SELECT count(*) FROM rm_changes),"
                    "  (SELECT count(*) FROM pearl_events WHERE id <= p.position)"
                    " FROM p"
                )
            ).one()
        return int(row[0]), int(row[1]), int(row[2])


def open_database(database_factory: Callable[[str], str], **settings: str) -> Database:
    url = database_factory("pearl_projector")
    upgrade(url)
    return Database(url, create_engine(url), WorldHistory.on_database(url, **settings))


@dataclass
class CrashRun:
    """What happened while projector processes were killed and one finally finished."""

    head: int
    kills_below_head: int = 0
    positions: list[int] = field(default_factory=list)
    snapshots: list[tuple[int, int, int]] = field(default_factory=list)
    final_exit_code: int | None = None
    final_log: str = ""
    recovered: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def observe(self, db: Database) -> int:
        """The projection's position now, recorded."""
        position = db.runner().position()
        self.positions.append(position)
        return position


def kill_while_catching_up(
    db: Database, procs: Projectors, rng: random.Random, run: CrashRun
) -> None:
    """Start projectors and SIGKILL each at a random instant, KILLS times (or until head).

    Some are killed 0.05-0.5 s after they start following, which usually lands inside their
    first batch; the others once they have committed a batch, at a random point of the next
    one (scaled by how long the first took), so that the rounds also make progress.
    """
    while len(run.snapshots) < KILLS and run.observe(db) < run.head:
        process = procs.start()
        procs.wait_ready(process)
        if rng.random() < 0.3:
            delay = rng.uniform(0.05, 0.5)
        else:
            started, before = time.monotonic(), run.observe(db)

            def committed(before: int = before) -> bool:
                return run.observe(db) > before

            poll(committed, timeout=60, interval=0.05)
            delay = rng.uniform(0.05, 0.5) * (time.monotonic() - started)
        time.sleep(delay)  # the random instant of the kill
        run.observe(db)
        assert procs.kill(process) == -signal.SIGKILL, procs.log(process)
        snapshot = db.snapshot()
        run.snapshots.append(snapshot)
        run.positions.append(snapshot[0])
        if snapshot[0] < run.head:
            run.kills_below_head += 1


@pytest.fixture(scope="module")
def crash_run(
    database_factory: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Database, CrashRun]]:
    """A backlog projected by repeatedly killed projectors, then by one that finished."""
    db = open_database(database_factory, **FAST_WRITER)
    rng = random.Random(SEED)
    record_backlog(db.history, rng, BACKLOG_WORLDS)
    run = CrashRun(head=db.runner().head())
    with projectors(db.url, tmp_path_factory.mktemp("projector-logs")) as procs:
        kill_while_catching_up(db, procs, rng, run)
        final = procs.start()
        procs.wait_ready(final)  # its SIGTERM handler is in place (the log may be at head)
        reached = poll(lambda: run.observe(db) >= run.head, timeout=90, interval=0.05)
        assert reached, f"the last projector did not catch up:\n{procs.log(final)}"
        run.final_exit_code = procs.stop(final)
        run.final_log = procs.log(final)
    run.recovered = dump_read_tables(db.engine)
    yield db, run
    db.history.close()
    db.engine.dispose()


class TestKilledWhileCatchingUp:
    def test_the_backlog_is_large(self, crash_run: tuple[Database, CrashRun]) -> None:
        db, run = crash_run
        assert len(db.event_ids()) >= 3000
        assert run.head == db.event_ids()[-1]

    def test_at_least_five_kills_landed_while_the_projector_was_behind(
        self, crash_run: tuple[Database, CrashRun]
    ) -> None:
        _, run = crash_run
        assert run.kills_below_head >= 5, (SEED, run.snapshots)

    def test_the_position_never_went_backwards(self, crash_run: tuple[Database, CrashRun]) -> None:
        _, run = crash_run
        assert run.positions == sorted(run.positions), (SEED, run.positions)
        assert run.positions[-1] == run.head

    def test_every_kill_left_exactly_the_events_up_to_the_position_applied(
        self, crash_run: tuple[Database, CrashRun]
    ) -> None:
        _, run = crash_run
        for position, change_rows, events_up_to_position in run.snapshots:
            assert change_rows == events_up_to_position, (SEED, position)

    def test_the_last_projector_stops_cleanly_on_sigterm(
        self, crash_run: tuple[Database, CrashRun]
    ) -> None:
        _, run = crash_run
        assert run.final_exit_code == 0, run.final_log
        assert "stopped at position" in run.final_log

    def test_there_is_one_change_row_per_event_without_gaps_or_duplicates(
        self, crash_run: tuple[Database, CrashRun]
    ) -> None:
        db, run = crash_run
        assert [row[0] for row in run.recovered["rm_changes"]] == db.event_ids()

    def test_the_tables_equal_those_of_a_fresh_rebuild_row_for_row(
        self, crash_run: tuple[Database, CrashRun]
    ) -> None:
        db, run = crash_run
        assert db.runner().rebuild() == len(db.event_ids())
        rebuilt = dump_read_tables(db.engine)
        assert differences(run.recovered, rebuilt) == {}
        assert run.recovered == rebuilt
        assert sum(len(rows) for rows in rebuilt.values()) > len(db.event_ids())


# -- two projectors at once ----------------------------------------------------------------

LOCK_HOLDER = text(
    "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objid = :key AND l.objsubid = 1"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def lock_holder_ports(db: Database) -> list[int]:
    """Client ports of the sessions holding the projection's advisory lock."""
    with db.engine.connect() as conn:
        ports = conn.execute(LOCK_HOLDER, {"key": db.runner().lock_key}).scalars()
        return [int(p) for p in ports]


def holder_among(db: Database, candidates: list[subprocess.Popen[bytes]]) -> list[int]:
    """The pids, among `candidates`, of processes holding the projection's lock."""
    ports = set(lock_holder_ports(db))
    return [p.pid for p in candidates if p.poll() is None and ports & local_tcp_ports(p.pid)]


def has_tried_the_lock(db: Database, process: subprocess.Popen[bytes]) -> bool:
    """Whether one of the process's sessions has asked for the projection's lock."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT client_port FROM pg_stat_activity WHERE datname = current_database()"
                " AND query LIKE 'SELECT pg_try_advisory_lock%'"
            )
        ).scalars()
        ports = {int(p) for p in rows}
    return bool(ports & local_tcp_ports(process.pid))


def add_some_events(db: Database, world_id: UUID, owner: str, count: int) -> int:
    """Record `count` elements in the world; return the position of the last one."""
    actor = Provenance(actor=owner)
    position = 0
    for n in range(count):
        fields = {"kind": "character", "name": f"Late {n}"}
        outcome = db.history.handle(
            AddEntity(world_id, "main", "elements", str(uuid4()), fields), actor
        )
        assert outcome.position is not None
        position = outcome.position
    return position


@dataclass
class TwoProjectorsRun:
    first_holders: list[int]
    standby_wrote_while_holder_frozen: bool
    takeover_holders: list[int]
    third_tried_the_lock: bool
    third_held_the_lock: bool
    exit_codes: dict[str, int]
    positions_reached: dict[str, bool]
    logs: str
    tables: dict[str, list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def two_projectors(
    database_factory: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Database, TwoProjectorsRun]]:
    """Two projectors started at once on a small backlog, watched, then stopped (and a third)."""
    db = open_database(database_factory, **FAST_WRITER)
    rng = random.Random(SEED + 1)
    owner, world_id = str(uuid4()), uuid4()
    actor = Provenance(actor=owner)
    for n, command in enumerate(world_commands(rng, world_id, owner)):
        if n < 120:
            db.history.handle(command, actor)
    runner = db.runner()
    reached: dict[str, bool] = {}
    with projectors(db.url, tmp_path_factory.mktemp("two-projector-logs")) as procs:
        both = [procs.start(), procs.start()]
        for process in both:
            procs.wait_ready(process)
        reached["both running"] = poll(lambda: runner.position() >= runner.head(), timeout=30)
        first_holders = holder_among(db, both)
        holder = next((p for p in both if p.pid in first_holders), both[0])
        standby = both[1] if holder is both[0] else both[0]

        # Freeze the lock holder: the standby must not start writing in its place.
        holder.send_signal(signal.SIGSTOP)
        try:
            frozen_target = add_some_events(db, world_id, owner, 5)
            standby_wrote = poll(lambda: runner.position() >= frozen_target, timeout=2.5)
        finally:
            holder.send_signal(signal.SIGCONT)
        reached["after thaw"] = poll(lambda: runner.position() >= frozen_target, timeout=30)

        exit_codes = {"holder": procs.stop(holder)}
        takeover = poll(lambda: holder_among(db, [standby]) == [standby.pid], timeout=30)
        takeover_holders = holder_among(db, [standby]) if takeover else []
        target = add_some_events(db, world_id, owner, 5)
        reached["after takeover"] = poll(lambda: runner.position() >= target, timeout=30)

        # A third one, started now, stands by; it too stops cleanly.
        third = procs.start()
        procs.wait_ready(third)
        third_tried = poll(lambda: has_tried_the_lock(db, third), timeout=30)
        third_holds = holder_among(db, [third]) != []
        exit_codes["third, standing by"] = procs.stop(third)
        exit_codes["standby"] = procs.stop(standby)
        logs = "\n".join(procs.log(p) for p in [*both, third])
    run = TwoProjectorsRun(
        first_holders=first_holders,
        standby_wrote_while_holder_frozen=standby_wrote,
        takeover_holders=takeover_holders,
        third_tried_the_lock=third_tried,
        third_held_the_lock=third_holds,
        exit_codes=exit_codes,
        positions_reached=reached,
        logs=logs,
        tables=dump_read_tables(db.engine),
    )
    yield db, run
    db.history.close()
    db.engine.dispose()


class TestTwoProjectorsAtOnce:
    def test_exactly_one_of_them_holds_the_lock(
        self, two_projectors: tuple[Database, TwoProjectorsRun]
    ) -> None:
        _, run = two_projectors
        assert len(run.first_holders) == 1, run.logs

    def test_the_standby_does_not_write_while_the_holder_is_alive(
        self, two_projectors: tuple[Database, TwoProjectorsRun]
    ) -> None:
        _, run = two_projectors
        assert run.standby_wrote_while_holder_frozen is False

    def test_the_projection_kept_up_throughout(
        self, two_projectors: tuple[Database, TwoProjectorsRun]
    ) -> None:
        _, run = two_projectors
        assert run.positions_reached == {
            "both running": True,
            "after thaw": True,
            "after takeover": True,
        }

    def test_the_standby_takes_over_once_the_holder_stops(
        self, two_projectors: tuple[Database, TwoProjectorsRun]
    ) -> None:
        _, run = two_projectors
        assert len(run.takeover_holders) == 1
        assert run.takeover_holders != run.first_holders

    def test_a_projector_started_while_another_holds_the_lock_stands_by(
        self, two_projectors: tuple[Database, TwoProjectorsRun]
    ) -> None:
        _, run = two_projectors
        assert run.third_tried_the_lock is True
        assert run.third_held_the_lock is False

    def test_all_of_them_stop_cleanly_on_sigterm(
        self, two_projectors: tuple[Database, TwoProjectorsRun]
    ) -> None:
        _, run = two_projectors
        assert run.exit_codes == {"holder": 0, "standby": 0, "third, standing by": 0}, run.logs

    def test_the_tables_still_equal_a_rebuild(
        self, two_projectors: tuple[Database, TwoProjectorsRun]
    ) -> None:
        db, run = two_projectors
        assert [row[0] for row in run.tables["rm_changes"]] == db.event_ids()
        db.runner().rebuild()
        assert differences(run.tables, dump_read_tables(db.engine)) == {}
