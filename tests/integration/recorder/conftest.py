"""Fixtures of the recorder tests: a migrated database of each test's own, an engine on it,
the application and its recorder."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, create_engine

from commands.application import WorldHistory
from commands.recorder import PearlRecorder
from pearl.migrate import upgrade


@pytest.fixture
def database(database_factory: Callable[[str], str]) -> str:
    """A fresh migrated database of this test's own."""
    url = database_factory("pearl_recorder")
    upgrade(url)
    return url


@pytest.fixture
def engine(database: str) -> Iterator[Engine]:
    created = create_engine(database, pool_size=20)
    yield created
    created.dispose()


@pytest.fixture
def history(database: str) -> Iterator[WorldHistory]:
    app = WorldHistory.on_database(database)
    yield app
    app.close()


@pytest.fixture
def recorder(history: WorldHistory) -> PearlRecorder:
    assert isinstance(history.recorder, PearlRecorder)
    return history.recorder
