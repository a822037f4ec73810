"""Who may see a world, decided in one round trip per request.

A request under a world needs the caller's role there (the World aggregate, the write
model, so a role given or taken away counts from the next request on) and, under a branch,
the branch's id, head and the world's projected position (the read tables). One statement
asks PostgreSQL for the version of the world's stream and for the branch row; the World is
kept in this process between requests and replayed again only when that version moved.

A cached World is shared by the threads of the process and is never changed: a newer
version replaces it whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, event

from commands.application import WorldHistory
from commands.errors import NotFound
from commands.world import World
from pearl.lru import Lru
from projections import tables as t

PREPARED = "pearl_world_access"
_EXECUTE = f"EXECUTE {PREPARED}(%s, %s)"


@dataclass(frozen=True)
class BranchRow:
    """What a read under a branch needs, read with the world's version."""

    branch_id: UUID
    head_version: int
    position: int | None  # the world's projected position (None before its first event)


@dataclass(frozen=True)
class Access:
    world: World
    branch_name: str | None  # the branch asked for, if any
    branch: BranchRow | None  # its row; None when not asked for, or it does not exist


class WorldAccess:
    def __init__(self, history: WorldHistory, engine: Engine, maxsize: int = 256) -> None:
        self.history = history
        self.engine = engine
        self.maxsize = maxsize
        self._worlds: Lru[UUID, World] = Lru(maxsize)
        events = history.recorder.table  # type: ignore[attr-defined]
        prepare = (
            f"PREPARE {PREPARED}(uuid, text) AS"
            f" SELECT (SELECT max(originator_version) FROM {events}"
            "  WHERE originator_id = $1) AS world_version,"
            " b.branch_id, b.head_version, w.last_position"
            " FROM (SELECT 1) AS one"
            f" LEFT JOIN {t.branches.name} AS b ON b.world_id = $1 AND b.name = $2"
            f" LEFT JOIN {t.worlds.name} AS w ON w.id = $1"
        )

        @event.listens_for(engine, "connect")
        def prepared(dbapi_connection: Any, record: Any) -> None:
            """Planned once per connection, not on every request (planning the three-table
            statement costs several times running it)."""
            with dbapi_connection.cursor() as cursor:
                cursor.execute(prepare)
            if not dbapi_connection.autocommit:
                dbapi_connection.commit()

    def load(self, world_id: UUID, branch: str | None = None) -> Access:
        """The world at its current version (404 when it does not exist) and, when `branch`
        is given, that branch's row (None when the world has no such branch).

        The statement runs on the pooled DBAPI connection itself: on every request under a
        world, SQLAlchemy's Connection and Result around one prepared EXECUTE cost more
        CPU than the rest of the lookup.
        """
        pooled = self.engine.raw_connection()  # autocommit: one round trip, nothing to end
        try:
            opened: Any = pooled.cursor()  # psycopg2's, a context manager
            with opened as cursor:
                cursor.execute(_EXECUTE, (str(world_id), branch))
                row: Any = cursor.fetchone()
        finally:
            pooled.close()
        world_version, branch_id, head_version, last_position = row
        if world_version is None:
            raise NotFound(f"world {world_id} does not exist")
        world = self._world(world_id, int(world_version))
        found = None
        if branch is not None and branch_id is not None:
            position = None if last_position is None else int(last_position)
            found = BranchRow(branch_id, int(head_version), position)  # a UUID (the dialect
            # registers psycopg2's uuid type on each connection it makes)
        return Access(world, branch, found)

    def _world(self, world_id: UUID, version: int) -> World:
        cached = self._worlds.get(world_id)
        if cached is not None and cached.version == version:
            return cached
        world = self.history.world(world_id)  # at least `version`: events are never removed
        self._worlds.put(world_id, world)  # (an older one racing in is only replayed again)
        return world
