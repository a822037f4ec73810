"""Session-wide servers for the tests: a real PostgreSQL and, when asked for, a real Redis.

With TEST_DATABASE_URL (or DATABASE_URL) set, the tests create their databases on that server;
otherwise one embedded PostgreSQL is started for the whole session in a temporary directory on
a free port. REDIS_URL works the same way for Redis.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pearl.devservers import create_database, drop_database, start_postgres, start_redis
from pearl.migrate import upgrade
from pearl.processes import free_port

DatabaseFactory = Callable[[str], str]


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """URL of a database on the session's PostgreSQL server from which to create others."""
    external = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    base = Path(tempfile.mkdtemp(prefix="pearl-test-postgres-"))
    try:
        with start_postgres(base, free_port(), database=None, durable=False) as server:
            yield server.url
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def database_factory(postgres_admin_url: str) -> Iterator[DatabaseFactory]:
    """Creates empty, uniquely named databases (`factory(prefix) -> url`), dropped at the end."""
    created: list[str] = []

    def factory(prefix: str = "pearl_test") -> str:
        name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        url = create_database(postgres_admin_url, name)
        created.append(name)
        return url

    yield factory
    for name in reversed(created):
        drop_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
def database_url(database_factory: DatabaseFactory) -> str:
    """SQLAlchemy URL of a fresh database migrated to head, shared by the whole session."""
    url = database_factory("pearl_test")
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis server: REDIS_URL if set, else an embedded one started on first use."""
    external = os.environ.get("REDIS_URL")
    if external:
        yield external
        return
    base = Path(tempfile.mkdtemp(prefix="pearl-test-redis-"))
    try:
        with start_redis(base, free_port()) as server:
            yield server.url
    finally:
        shutil.rmtree(base, ignore_errors=True)
