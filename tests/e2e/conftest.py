"""The API over real HTTP: gunicorn and the projector, started as `make run` starts them."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import requests
from sqlalchemy import create_engine, text

from pearl.launcher import start_api_server, start_projector, start_worker
from pearl.processes import free_port

JWT_SECRET = secrets.token_urlsafe(48)
PASSWORD = "correct horse battery staple"


@dataclass
class Server:
    url: str
    database_url: str
    jwt_secret: str
    log_dir: Path  # api.log, worker.log and projector.log: each process's output

    @property
    def api(self) -> str:
        return self.url + "/api/v1"

    def event_count(self) -> int:
        """Events in the event store right now."""
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT count(*) FROM pearl_events")).scalar_one())
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def server(database_url: str, redis_url: str) -> Iterator[Server]:
    """The API (gunicorn, 2 workers), the projector and the suggestion worker (offline
    provider), for the whole session."""
    logs = Path(tempfile.mkdtemp(prefix="pearl-e2e-"))
    env = {"JWT_SECRET": JWT_SECRET, "PEARL_DATA_DIR": str(logs), "MIN_POSITION_WAIT": "5"}
    env["LOGIN_MAX_ATTEMPTS"] = "100000"  # every test logs in from 127.0.0.1
    with (
        start_projector(database_url, env=env, log_path=logs / "projector.log"),
        start_worker(
            database_url,
            redis_url,
            env={**env, "AI_PROVIDER": "offline"},
            log_path=logs / "worker.log",
        ),
        start_api_server(
            database_url,
            free_port(),
            redis_url=redis_url,
            env=env,
            log_path=logs / "api.log",
        ) as api,
    ):
        yield Server(url=api.url, database_url=database_url, jwt_secret=JWT_SECRET, log_dir=logs)


@dataclass
class User:
    id: str
    email: str
    token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
def register(server: Server) -> Callable[[], User]:
    """Makes a new account and logs it in: `register() -> User`."""

    def make() -> User:
        email = f"user-{uuid4().hex[:12]}@example.com"
        created = requests.post(
            f"{server.api}/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": "Tester"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        tokens = requests.post(
            f"{server.api}/auth/token", json={"email": email, "password": PASSWORD}, timeout=10
        )
        assert tokens.status_code == 200, tokens.text
        body = tokens.json()
        return User(created.json()["id"], email, body["access_token"], body["refresh_token"])

    return make


@pytest.fixture
def owner(register: Callable[[], User]) -> User:
    """A fresh user who will own the test's world."""
    return register()


@pytest.fixture
def world(server: Server, owner: User) -> dict[str, Any]:
    """A fresh world owned by `owner`."""
    response = requests.post(
        f"{server.api}/worlds", json={"name": "Test world"}, headers=owner.auth, timeout=10
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def branch_url(server: Server, world: dict[str, Any]) -> str:
    """Base URL of the world's `main` branch."""
    return f"{server.api}/worlds/{world['id']}/branches/main"
