"""Access to a world in one round trip (api.world_access), and pooled connections the server
closed being replaced at checkout without a round trip (api.services)."""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Iterator
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, create_engine, text

from api.world_access import BranchRow, WorldAccess
from commands.application import WorldHistory
from commands.errors import NotFound
from commands.messages import AddEntity, CreateWorld, RemoveMember, SetMemberRole
from commands.provenance import Provenance
from commands.world import branch_id
from pearl.migrate import upgrade
from pearl.pool_checks import drop_closed_on_checkout
from projections.runner import ProjectionRunner
from queries.worlds import branch, world_position

OWNER = str(uuid4())
READER = str(uuid4())


@pytest.fixture(scope="module")
def database(database_factory: Callable[[str], str]) -> str:
    url = database_factory("pearl_world_access")
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def history(database: str) -> Iterator[WorldHistory]:
    app = WorldHistory.on_database(database)
    yield app
    app.close()


@pytest.fixture(scope="module")
def reads(database: str) -> Iterator[Engine]:
    engine = create_engine(database, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def new_world(history: WorldHistory) -> UUID:
    world_id = uuid4()
    history.handle(CreateWorld(world_id, owner_id=OWNER, name="Kept"), Provenance(actor=OWNER))
    return world_id


def test_a_world_comes_with_its_branch_row_as_the_read_tables_have_it(
    history: WorldHistory, reads: Engine, database: str
) -> None:
    world_id = new_world(history)
    add = AddEntity(world_id, "main", "elements", str(uuid4()), {"kind": "artifact", "name": "x"})
    history.handle(add, Provenance(actor=OWNER))
    writes = create_engine(database)
    ProjectionRunner(writes, history).catch_up()
    writes.dispose()
    found = WorldAccess(history, reads).load(world_id, "main")
    assert found.world.id == world_id and found.world.role_of(OWNER) == "owner"
    assert found.branch_name == "main"
    with reads.connect() as conn:
        row = branch(conn, world_id, "main")
        position = world_position(conn, world_id)
    assert row is not None and position is not None
    assert found.branch == BranchRow(branch_id(world_id, "main"), row["head_version"], position)
    assert found.branch.head_version == 1


def test_no_branch_asked_or_none_such_gives_no_row(history: WorldHistory, reads: Engine) -> None:
    world_id = new_world(history)
    access = WorldAccess(history, reads)
    assert access.load(world_id).branch is None
    nowhere = access.load(world_id, "nowhere")
    assert nowhere.branch is None and nowhere.branch_name == "nowhere"


def test_an_unknown_world_or_a_stream_that_is_no_world_is_not_found(
    history: WorldHistory, reads: Engine
) -> None:
    world_id = new_world(history)
    access = WorldAccess(history, reads)
    with pytest.raises(NotFound):
        access.load(uuid4(), "main")
    with pytest.raises(NotFound):  # the main branch's own stream exists, but is no world
        access.load(branch_id(world_id, "main"))


def test_the_world_is_kept_until_its_stream_moves_and_roles_count_at_once(
    history: WorldHistory, reads: Engine
) -> None:
    world_id = new_world(history)
    access = WorldAccess(history, reads)
    first = access.load(world_id).world
    assert access.load(world_id).world is first  # unchanged stream: the same object
    history.handle(SetMemberRole(world_id, READER, "viewer"), Provenance(actor=OWNER))
    given = access.load(world_id).world
    assert given is not first and given.version == first.version + 1
    assert given.role_of(READER) == "viewer" and first.role_of(READER) is None
    history.handle(RemoveMember(world_id, READER), Provenance(actor=OWNER))
    assert access.load(world_id).world.role_of(READER) is None


def test_only_the_most_recently_used_worlds_are_kept(history: WorldHistory, reads: Engine) -> None:
    access = WorldAccess(history, reads, maxsize=2)
    a, b, c = new_world(history), new_world(history), new_world(history)
    kept_a = access.load(a).world
    access.load(b)
    assert access.load(a).world is kept_a  # a is now the most recent
    access.load(c)  # b goes
    assert access.load(a).world is kept_a
    kept_b = access.load(b).world
    assert access.load(b).world is kept_b


def test_a_pooled_connection_the_server_closed_is_replaced_at_checkout(database: str) -> None:
    engine = create_engine(database, pool_size=1, max_overflow=0)
    drop_closed_on_checkout(engine)
    admin = create_engine(database, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            dbapi = conn.connection.dbapi_connection
        with engine.connect() as conn:  # a live idle connection is kept: no reconnect
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == first
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        deadline = time.monotonic() + 10
        assert dbapi is not None
        while not select.select([dbapi.fileno()], [], [], 0.05)[0]:
            assert time.monotonic() < deadline, "the server never closed the session"
        with engine.connect() as conn:  # no error: the closed one was replaced
            again = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        assert again != first
    finally:
        engine.dispose()
        admin.dispose()


def test_a_pooled_connection_with_a_harmless_message_waiting_is_pinged_and_kept(
    database: str,
) -> None:
    engine = create_engine(database, pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT")
    drop_closed_on_checkout(engine)
    admin = create_engine(database, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            conn.execute(text("LISTEN pearl_world_access_test"))
            dbapi = conn.connection.dbapi_connection
        with admin.connect() as conn:  # something the server sends unasked
            conn.execute(text("NOTIFY pearl_world_access_test"))
        deadline = time.monotonic() + 10
        assert dbapi is not None
        while not select.select([dbapi.fileno()], [], [], 0.05)[0]:
            assert time.monotonic() < deadline, "the notification never arrived"
        with engine.connect() as conn:  # pinged, alive: the same session
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == first
    finally:
        engine.dispose()
        admin.dispose()
