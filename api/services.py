"""What the views need at hand, built once per process by the app factory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError

from commands.application import WorldHistory
from pearl.config import Config
from queries.cache import QueryCache


@dataclass
class Services:
    config: Config
    engine: Engine
    history: WorldHistory
    cache: QueryCache

    @classmethod
    def build(cls, config: Config) -> Services:
        engine = create_engine(config.database_url, pool_pre_ping=True, pool_size=5)
        history = WorldHistory.on_database(
            config.database_url, COMMAND_RETRIES=str(config.command_retries)
        )
        ping_on_checkout(history.recorder.datastore.engine)  # type: ignore[attr-defined]
        return cls(
            config=config, engine=engine, history=history, cache=QueryCache(config.redis_url)
        )


def ping_on_checkout(engine: Engine) -> None:
    """Test each pooled connection as it is checked out, as `pool_pre_ping` does for the
    engines created here, for the event store's engine (built by eventsourcing, which takes
    no such option): after a database restart no request fails on a stale connection."""

    @event.listens_for(engine, "checkout")
    def ping(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()  # leave no transaction open (callers set autocommit)
        except Exception as error:
            raise DisconnectionError("stale pooled connection") from error  # the pool reconnects


def services() -> Services:
    found: Services = current_app.extensions["pearl"]
    return found
