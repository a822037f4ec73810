"""What the views need at hand, built once per process by the app factory."""

from __future__ import annotations

import select
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError

from api.world_access import WorldAccess
from commands.application import WorldHistory
from pearl.config import Config
from queries.cache import QueryCache


@dataclass
class Services:
    """`engine` runs transactions (writes); `reads` is in autocommit mode, so a lookup is one
    round trip (no BEGIN, no ROLLBACK); `access` answers who may see a world."""

    config: Config
    engine: Engine
    reads: Engine
    history: WorldHistory
    cache: QueryCache
    access: WorldAccess = field(init=False)

    def __post_init__(self) -> None:
        self.access = WorldAccess(self.history, self.reads)

    @classmethod
    def build(cls, config: Config) -> Services:
        engine = create_engine(config.database_url, pool_size=5)
        reads = create_engine(config.database_url, pool_size=5, isolation_level="AUTOCOMMIT")
        history = WorldHistory.on_database(
            config.database_url, COMMAND_RETRIES=str(config.command_retries)
        )
        for pooled in (engine, reads, history.recorder.datastore.engine):  # type: ignore[attr-defined]
            drop_closed_on_checkout(pooled)
        return cls(
            config=config,
            engine=engine,
            reads=reads,
            history=history,
            cache=QueryCache(config.redis_url),
        )


def drop_closed_on_checkout(engine: Engine) -> None:
    """Replace a pooled connection the server has closed as it is checked out, so that after
    a database restart no request fails on a stale connection, without a round trip.

    A server that stops (or restarts) ends its sessions: the socket of an idle pooled
    connection then has the server's goodbye (or end of file) to read, while a live idle
    connection has nothing. Looking costs one `select()` call, where `pool_pre_ping` costs a
    `SELECT 1` (and a BEGIN and ROLLBACK) on every checkout. Only a connection with something
    to read is pinged (anything else a server might send unasked, a notice say, then costs
    one ping, not the connection).
    """

    @event.listens_for(engine, "checkout")
    def check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if dbapi_connection.closed:
            raise DisconnectionError("closed pooled connection")  # the pool reconnects
        try:
            readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
        except (OSError, ValueError) as error:
            raise DisconnectionError("unusable pooled connection") from error
        if readable:
            ping(dbapi_connection)


def ping(dbapi_connection: Any) -> None:
    """`SELECT 1`, leaving no transaction open; DisconnectionError if it fails."""
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if not dbapi_connection.autocommit:
            dbapi_connection.rollback()
    except Exception as error:
        raise DisconnectionError("the server closed this pooled connection") from error


def services() -> Services:
    found: Services = current_app.extensions["pearl"]
    return found
