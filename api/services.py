"""What the views need at hand, built once per process by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Engine, create_engine

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
        return cls(
            config=config, engine=engine, history=history, cache=QueryCache(config.redis_url)
        )


def services() -> Services:
    found: Services = current_app.extensions["pearl"]
    return found
