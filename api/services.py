"""What the views need at hand, built once per process by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Engine, create_engine

from commands.application import WorldHistory
from pearl.config import Config


@dataclass
class Services:
    config: Config
    engine: Engine
    history: WorldHistory

    @classmethod
    def build(cls, config: Config) -> Services:
        engine = create_engine(config.database_url, pool_pre_ping=True, pool_size=5)
        history = WorldHistory(
            env={
                "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
                "SQLALCHEMY_URL": config.database_url,
                "CREATE_TABLE": "n",
                "COMMAND_RETRIES": str(config.command_retries),
            }
        )
        return cls(config=config, engine=engine, history=history)


def services() -> Services:
    found: Services = current_app.extensions["pearl"]
    return found
