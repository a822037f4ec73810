"""What the views need at hand, built once per process by the app factory."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import Engine, create_engine

from api.world_access import WorldAccess
from commands.application import WorldHistory
from pearl.config import Config
from pearl.pool_checks import drop_closed_on_checkout
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


def services() -> Services:
    found: Services = current_app.extensions["pearl"]
    return found
