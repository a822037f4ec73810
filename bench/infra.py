"""The servers a benchmark run uses: embedded PostgreSQL and Redis, fresh databases, the API.

PostgreSQL runs with the settings `make run` uses (durable: fsync and synchronous_commit
on), in a temporary directory on a free port, so a run never touches `.data/`.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg2
import requests
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from api import users
from pearl.devservers import create_database, start_postgres, start_redis
from pearl.launcher import start_api_server, start_projector, start_worker
from pearl.migrate import upgrade
from pearl.processes import ManagedProcess, free_port

PASSWORD = "correct horse battery staple"
TIMEOUT = 60


def connect(url: str) -> Any:
    """A psycopg2 connection (not autocommit) from a SQLAlchemy-style URL."""
    parsed = make_url(url)
    return psycopg2.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        dbname=parsed.database,
    )


@dataclass
class Servers:
    """The run's PostgreSQL and Redis, and the work directory for archives and logs."""

    admin_url: str
    redis_url: str
    work: Path

    def database(self, name: str) -> str:
        """A new database, migrated to head."""
        url = create_database(self.admin_url, f"bench_{name}_{uuid4().hex[:6]}")
        upgrade(url)
        return url


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    work = Path(tempfile.mkdtemp(prefix="pearl-bench-"))
    try:
        with (
            start_postgres(work, free_port(), database=None) as postgres,
            start_redis(work, free_port()) as redis_server,
        ):
            assert postgres.url is not None and redis_server.url is not None
            yield Servers(postgres.url, redis_server.url, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class User:
    id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Stack:
    """The API (gunicorn), projector and worker as `make run` starts them."""

    url: str
    database_url: str
    redis_url: str
    api_process: ManagedProcess
    logs: Path

    @property
    def api(self) -> str:
        return self.url + "/api/v1"

    def register(self) -> User:
        """A new account, logged in."""
        email = f"bench-{uuid4().hex[:12]}@example.com"
        created = requests.post(
            f"{self.api}/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": "Bench"},
            timeout=TIMEOUT,
        )
        created.raise_for_status()
        return self.login(email)

    def login(self, email: str) -> User:
        tokens = requests.post(
            f"{self.api}/auth/token", json={"email": email, "password": PASSWORD}, timeout=TIMEOUT
        )
        tokens.raise_for_status()
        body = requests.get(
            f"{self.api}/me",
            headers={"Authorization": f"Bearer {tokens.json()['access_token']}"},
            timeout=TIMEOUT,
        ).json()
        return User(str(body["id"]), tokens.json()["access_token"])


@contextlib.contextmanager
def stack(servers: Servers, database_url: str, workers: int = 2) -> Iterator[Stack]:
    """API (`workers` gunicorn workers, the `make run` default), projector and worker."""
    logs = servers.work / f"stack-{uuid4().hex[:6]}"
    logs.mkdir()
    env = {
        "JWT_SECRET": secrets.token_urlsafe(48),
        "PEARL_DATA_DIR": str(logs),
        "ACCESS_TOKEN_TTL": "86400",
        "AI_PROVIDER": "offline",
    }
    redis_url = servers.redis_url
    with (
        start_projector(database_url, env=env, log_path=logs / "projector.log"),
        start_worker(database_url, redis_url, env=env, log_path=logs / "worker.log"),
        start_api_server(
            database_url,
            free_port(),
            redis_url=redis_url,
            workers=workers,
            env=env,
            log_path=logs / "api.log",
            timeout=120,
        ) as api,
    ):
        assert api.url is not None
        yield Stack(api.url, database_url, redis_url, api, logs)


def register_user(engine: Engine) -> tuple[str, str]:
    """A user made as `pearl users create` makes one: (id, email); log in with PASSWORD."""
    email = f"bench-{uuid4().hex[:12]}@example.com"
    user = users.register(engine, email, PASSWORD, "Bench")
    return str(user["id"]), email
