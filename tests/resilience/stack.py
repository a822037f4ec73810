"""A stack of its own for scenarios that kill processes or stop servers.

The API (gunicorn), the projector and the suggestion worker are started with the launcher's
functions on a database and Redis the scenario chooses, never those of the session's shared
`server`. Children are started, killed and restarted from the calling (main) thread: on
Linux a child is signalled when the thread that started it exits.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from pearl.devservers import create_database, start_postgres, start_redis
from pearl.launcher import start_api_server, start_projector, start_worker
from pearl.migrate import upgrade
from pearl.processes import ManagedProcess, free_port

T = TypeVar("T")
API_PREFIX = "/api/v1"


def wait_for(condition: Callable[[], T], timeout: float, what: str) -> T:
    """The first truthy `condition()`; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    interval = 0.02
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.25)


def on_redis_db(redis_url: str, db: int) -> str:
    """The same Redis server, another database (so queues of different stacks never mix)."""
    return str(make_url(redis_url).set(database=str(db)))


@dataclass
class Infra:
    """Where a scenario gets databases, Redis and a directory for logs."""

    new_database: Callable[[str], str]  # prefix -> URL of a new, empty database
    redis_url: str
    logs: Path

    def migrated_database(self, prefix: str) -> str:
        url = self.new_database(prefix)
        upgrade(url)
        return url


@contextmanager
def embedded_infra(base: Path) -> Iterator[Infra]:
    """Throw-away PostgreSQL and Redis under `base` (for `python -m tests.soak`)."""
    counter = iter(range(1, 10**6))
    with (
        start_postgres(base / "pg", free_port(), database=None, durable=False) as postgres,
        start_redis(base / "redis", free_port()) as redis_server,
    ):

        def new_database(prefix: str) -> str:
            return create_database(postgres.url, f"{prefix}_{next(counter)}")

        yield Infra(new_database, redis_server.url, base / "logs")


@dataclass
class Stack:
    """API, projector and worker processes of one scenario, on its database and Redis."""

    database_url: str
    redis_url: str
    logs: Path
    api_workers: int = 2
    env: dict[str, str] = field(default_factory=dict)
    api: ManagedProcess | None = None
    projector: ManagedProcess | None = None
    worker: ManagedProcess | None = None
    _engine: Engine | None = None

    def __post_init__(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {
            "JWT_SECRET": secrets.token_urlsafe(48),
            "PEARL_DATA_DIR": str(self.logs),  # nothing is written into the checkout
            "MIN_POSITION_WAIT": "5",
            "ACCESS_TOKEN_TTL": "7200",
            "AI_PROVIDER": "offline",
            "SUGGESTION_RETRY_BACKOFF": "0.2",
            **self.env,
        }

    # -- processes ---------------------------------------------------------------------------

    def start_api(self, port: int | None = None) -> ManagedProcess:
        self.api = start_api_server(
            self.database_url,
            port or free_port(),
            redis_url=self.redis_url,
            workers=self.api_workers,
            env=self.env,
            log_path=self.logs / "api.log",
            timeout=60,
        )
        return self.api

    def start_projector(self) -> ManagedProcess:
        self.projector = start_projector(
            self.database_url, env=self.env, log_path=self.logs / "projector.log", timeout=60
        )
        return self.projector

    def start_worker(self) -> ManagedProcess:
        self.worker = start_worker(
            self.database_url,
            self.redis_url,
            env=self.env,
            log_path=self.logs / "worker.log",
            timeout=60,
        )
        return self.worker

    @property
    def url(self) -> str:
        assert self.api is not None, "the API is not started"
        return self.api.url

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    def api_worker_pids(self) -> list[int]:
        """The gunicorn workers: the children of the master process."""
        assert self.api is not None
        try:
            return [child.pid for child in psutil.Process(self.api.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def kill_projector(self) -> None:
        """SIGKILL the projector and wait for it to be gone."""
        assert self.projector is not None
        self.projector.process.send_signal(signal.SIGKILL)
        self.projector.process.wait(10)
        self.projector.stop()

    def all_pids(self) -> set[int]:
        """Every process of the stack now (masters and their children)."""
        pids: set[int] = set()
        for child in (self.api, self.projector, self.worker):
            if child is None or child.exit_code() is not None:
                continue
            pids.add(child.pid)
            with suppress(psutil.NoSuchProcess):
                pids |= {p.pid for p in psutil.Process(child.pid).children(recursive=True)}
        return pids

    def stop(self) -> int:
        """Stop everything; return how many of its processes are still alive afterwards."""
        pids = self.all_pids()
        children = [c for c in (self.api, self.worker, self.projector) if c is not None]
        for child in children:  # all at once: each takes seconds to shut down cleanly
            if child.exit_code() is None:
                with suppress(ProcessLookupError):
                    child.process.send_signal(child.stop_signal)
        for child in children:
            child.stop()
        if self._engine is not None:
            self._engine.dispose()
        deadline = time.monotonic() + 10
        alive = [p for p in pids if _alive(p)]
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [p for p in pids if _alive(p)]
        return len(alive)

    # -- the database ------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.database_url, pool_pre_ping=True)
        return self._engine

    def head(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(text("SELECT coalesce(max(id), 0) FROM pearl_events")).scalar_one()
            )

    def position(self) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(
                text("SELECT position FROM projection_positions WHERE name = 'read_model'")
            ).scalar()
        return int(found or 0)

    def wait_projected(self, timeout: float = 60) -> int:
        """Wait until the projector has applied every recorded event; return the head."""
        head = self.head()
        wait_for(lambda: self.position() >= head, timeout, f"the projector to reach {head}")
        return head


def _alive(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_group(process: ManagedProcess) -> None:
    """SIGKILL a child and every process of its group (a Celery worker and its pool)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.process.wait(10)
