"""`pearl up` / `make run`: start the whole stack in the foreground and supervise it.

Without DATABASE_URL / REDIS_URL the launcher starts embedded PostgreSQL and Redis with their
data under `.data/`; then it migrates the database and starts the API under gunicorn. A child
that dies takes the stack down (exit code 1); SIGINT, SIGTERM or SIGHUP stop it cleanly
(exit code 0). Stopping always goes in reverse start order.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from uuid import uuid4

from pearl import config
from pearl.devservers import start_postgres, start_redis
from pearl.metrics_dir import metrics_env, reset_metrics_dir
from pearl.migrate import upgrade
from pearl.processes import ManagedProcess, check_port_free, spawn

WSGI_APP = "pearl.wsgi:app"
GUNICORN_CONFIG = "python:pearl.gunicorn_conf"
PROJECTOR = ("-m", "projections")
# The projector logs this once it follows the event log (see projections/__main__.py).
PROJECTOR_READY = "following the event log from position"
WORKER = ("-m", "celery", "-A", "suggestions.celery_app", "worker", "--loglevel", "INFO")
# prefork, so that time limits are enforced; no gossip, mingle or heartbeats between workers.
WORKER_OPTIONS = (
    *("--pool", "prefork", "--concurrency", "1"),
    *("--without-gossip", "--without-mingle", "--without-heartbeat"),
)
# Celery logs "celery@<host> ready." once the worker consumes from the broker.
WORKER_READY = " ready."
API_PREFIX = "/api/v1"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Health checks go straight to the local server, whatever http_proxy says.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SettingsError(ValueError):
    """An environment variable the launcher reads has an unusable value."""


class Shutdown(BaseException):
    """Raised in the main thread by SIGINT, SIGTERM or SIGHUP."""


@dataclass(frozen=True)
class Settings:
    """What the environment asks the launcher for."""

    database_url: str | None
    redis_url: str | None
    host: str
    port: int
    pg_port: int
    redis_port: int
    workers: int
    data_dir: Path

    @classmethod
    def from_env(cls) -> Settings:
        environ = os.environ

        def number(name: str, default: int) -> int:
            raw = environ.get(name, "")
            try:
                value = int(raw) if raw.strip() else default
            except ValueError:
                raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
            if value <= 0:
                raise SettingsError(f"{name} must be positive, not {value}")
            return value

        return cls(
            database_url=environ.get("DATABASE_URL") or None,
            redis_url=environ.get("REDIS_URL") or None,
            host=environ.get("HOST") or "127.0.0.1",
            port=number("PORT", 8000),
            pg_port=number("PG_PORT", 54329),
            redis_port=number("REDIS_PORT", 63799),
            workers=number("WEB_CONCURRENCY", 2),
            data_dir=config.data_dir(),
        )


class Supervisor:
    """Named child processes, stopped in reverse order; the first unexpected death wins.

    `env` is what children started with `spawn` see: the launcher adds DATABASE_URL and
    REDIS_URL once the servers are up.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.children: list[ManagedProcess] = []
        self.env: dict[str, str] = dict(os.environ if env is None else env)

    def add(self, child: ManagedProcess) -> ManagedProcess:
        self.children.append(child)
        return child

    def spawn(self, name: str, argv: Sequence[str]) -> ManagedProcess:
        """Start and register a child with `self.env`; its output goes to the terminal."""
        return self.add(spawn(name, argv, env=self.env))

    def exited(self) -> ManagedProcess | None:
        """The first child that is no longer running, if any."""
        return next((c for c in self.children if c.exit_code() is not None), None)

    def stop_all(self, timeout: float = 10.0) -> None:
        while self.children:
            child = self.children.pop()
            child.stop(timeout)

    def watch(self, interval: float = 0.5) -> ManagedProcess:
        """Block until a child exits and return it (a signal interrupts with `Shutdown`)."""
        while True:
            dead = self.exited()
            if dead is not None:
                return dead
            time.sleep(interval)


def _local(host: str) -> str:
    """The address to reach a server bound to `host` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def wait_healthy(server: ManagedProcess, base_url: str, timeout: float = 30.0) -> None:
    """Wait until `GET base_url/healthz` answers 200; fail if the server exits first."""
    deadline = time.monotonic() + timeout
    while True:
        if server.exit_code() is not None:
            raise server.failure(f"{server.describe_exit()} before /healthz answered")
        try:
            with _NO_PROXY.open(base_url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise server.failure(f"did not answer 200 on /healthz within {timeout:.0f} s")
        time.sleep(0.1)


def start_api_server(
    database_url: str,
    port: int,
    *,
    host: str = "127.0.0.1",
    redis_url: str | None = None,
    workers: int = 2,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    app: str = WSGI_APP,
    timeout: float = 30.0,
) -> ManagedProcess:
    """Start gunicorn serving `app` on host:port and wait until /healthz answers 200.

    The child sees this process's environment plus `env`, DATABASE_URL and REDIS_URL. Output
    goes to `log_path` if given, else to the terminal. The result's `url` is the server's base
    URL (`http://127.0.0.1:8000`); stop it with `.stop()`, or use it as a context manager:
    `with start_api_server(url, port) as server: ...`.
    """
    check_port_free(port, host, what="the API server", hint="set PORT to another port")
    child_env = metrics_env({**os.environ, **(env or {}), "DATABASE_URL": database_url})
    if redis_url:
        child_env["REDIS_URL"] = redis_url
    argv = [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG]
    argv += ["--bind", f"{host}:{port}"]
    argv += ["--workers", str(workers), "--graceful-timeout", "8", "--no-control-socket", app]
    base_url = f"http://{_local(host)}:{port}"
    server = spawn("API server (gunicorn)", argv, env=child_env, log_path=log_path, url=base_url)
    try:
        wait_healthy(server, base_url, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def start_projector(
    database_url: str,
    *,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    timeout: float = 30.0,
) -> ManagedProcess:
    """Start the projector (`python -m projections`) on `database_url`.

    With `log_path`, waits until the projector logs that it follows the event log; without,
    its output goes to the terminal and it is not waited for. Use `.stop()` or `with`.
    """
    child_env = {**os.environ, **(env or {}), "DATABASE_URL": database_url}
    projector = spawn("projector", [sys.executable, *PROJECTOR], env=child_env, log_path=log_path)
    if log_path is None:
        return projector
    deadline = time.monotonic() + timeout
    try:
        while PROJECTOR_READY not in projector.log_text():
            if projector.exit_code() is not None:
                raise projector.failure(f"{projector.describe_exit()} while starting")
            if time.monotonic() > deadline:
                raise projector.failure(f"did not start within {timeout:.0f} s")
            time.sleep(0.05)
    except BaseException:
        projector.stop()
        raise
    return projector


def start_worker(
    database_url: str,
    redis_url: str,
    *,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    timeout: float = 30.0,
) -> ManagedProcess:
    """Start the AI suggestion worker (a Celery worker, one task at a time) on Redis.

    With `log_path`, waits until Celery logs that the worker is ready; without, its output
    goes to the terminal and it is not waited for. Use `.stop()` or `with`.
    """
    child_env = metrics_env(
        {**os.environ, **(env or {}), "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    )
    name = f"suggestions-{uuid4().hex[:8]}@%h"
    argv = [sys.executable, *WORKER, *WORKER_OPTIONS, "--hostname", name]
    worker = spawn("suggestion worker (celery)", argv, env=child_env, log_path=log_path)
    if log_path is None:
        return worker
    deadline = time.monotonic() + timeout
    try:
        while WORKER_READY not in worker.log_text():
            if worker.exit_code() is not None:
                raise worker.failure(f"{worker.describe_exit()} while starting")
            if time.monotonic() > deadline:
                raise worker.failure(f"did not start within {timeout:.0f} s")
            time.sleep(0.05)
    except BaseException:
        worker.stop()
        raise
    return worker


def _raise_shutdown(signum: int, frame: FrameType | None) -> None:
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
    raise Shutdown(signal.Signals(signum).name)


def say(message: str) -> None:
    print(f"pearl: {message}", flush=True)


def _start(settings: Settings, supervisor: Supervisor) -> ManagedProcess:
    """Start everything; return the API server."""
    api_hint = "set PORT to another port"
    check_port_free(settings.port, settings.host, what="the API server", hint=api_hint)
    database_url = settings.database_url
    if database_url is None:
        hint = "set PG_PORT to another port, or DATABASE_URL to use an existing server"
        check_port_free(settings.pg_port, what="embedded PostgreSQL", hint=hint)
        say(f"starting embedded PostgreSQL on 127.0.0.1:{settings.pg_port} ...")
        postgres = supervisor.add(start_postgres(settings.data_dir, settings.pg_port))
        database_url = postgres.url
    redis_url = settings.redis_url
    if redis_url is None:
        hint = "set REDIS_PORT to another port, or REDIS_URL to use an existing server"
        check_port_free(settings.redis_port, what="embedded Redis", hint=hint)
        say(f"starting embedded Redis on 127.0.0.1:{settings.redis_port} ...")
        redis_url = supervisor.add(start_redis(settings.data_dir, settings.redis_port)).url
    say("migrating the database ...")
    upgrade(database_url)
    # Validates the settings and creates the development JWT secret once, before the workers
    # start (they would race to create it).
    config.Config.from_env(database_url=database_url, redis_url=redis_url)
    supervisor.env |= {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PEARL_DATA_DIR": str(settings.data_dir),
    }
    if not supervisor.env.get("PROMETHEUS_MULTIPROC_DIR"):
        supervisor.env["PROMETHEUS_MULTIPROC_DIR"] = str(reset_metrics_dir(settings.data_dir))
    say("starting the projector ...")
    supervisor.add(start_projector(database_url, env=supervisor.env))
    say("starting the suggestion worker ...")
    supervisor.add(start_worker(database_url, redis_url, env=supervisor.env))
    say(f"starting the API on {settings.host}:{settings.port} ...")
    api = supervisor.add(
        start_api_server(
            database_url,
            settings.port,
            host=settings.host,
            redis_url=redis_url,
            workers=settings.workers,
            env=supervisor.env,
        )
    )
    # More long-running processes go here, one line each, e.g.
    # supervisor.spawn("worker", [sys.executable, "-m", "celery", "-A", "suggestions", "worker"])
    return api


def run() -> int:
    """Start the stack, supervise it until a signal or a death; return the exit code."""
    settings = Settings.from_env()
    supervisor = Supervisor()
    previous = {sig: signal.signal(sig, _raise_shutdown) for sig in _STOP_SIGNALS}
    try:
        api = _start(settings, supervisor)
        say(f"API  {api.url}{API_PREFIX}")
        say(f"docs {api.url}/docs")
        say("press Ctrl-C to stop")
        dead = supervisor.watch()
        detail = f"; log {dead.log_path}" if dead.log_path else ""
        say(f"{dead.name} {dead.describe_exit()} unexpectedly{detail}; stopping the others")
        return 1
    except Shutdown as signal_name:
        say(f"received {signal_name}; stopping")
        return 0
    finally:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # nothing may interrupt the clean-up
        supervisor.stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
