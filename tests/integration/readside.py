"""Helpers shared by the read-side integration tests: read-table dumps and projector processes.

Imported by the test modules beside it as `tests.integration.readside`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, String, cast, create_engine, select

from commands.application import WorldHistory
from pearl.migrate import upgrade
from projections import tables as t

REPO_ROOT = Path(__file__).resolve().parents[2]

# Columns that legitimately differ between two builds of the same tables: the surrogate key
# of the versioned rows and the wall clock of the last position update.
UNCOMPARED = {"row_id", "updated_at"}

Dump = dict[str, list[tuple[Any, ...]]]


@contextmanager
def migrated(
    database_factory: Callable[[str], str], prefix: str
) -> Iterator[tuple[Engine, WorldHistory]]:
    """A new database migrated to head: an engine on it and the application, closed after."""
    url = database_factory(prefix)
    upgrade(url)
    engine = create_engine(url)
    history = WorldHistory.on_database(url)
    try:
        yield engine, history
    finally:
        history.close()
        engine.dispose()


def dump_read_tables(engine: Engine) -> Dump:
    """Every read table, row by row, in a deterministic order (all columns but UNCOMPARED).

    The generated `search` column is compared as its text form.
    """
    dump: Dump = {}
    with engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            columns = [
                cast(c, String).label(c.name) if c.name == "search" else c
                for c in table.c
                if c.name not in UNCOMPARED
            ]
            rows = conn.execute(select(*columns).order_by(*columns)).all()
            dump[table.name] = [tuple(row) for row in rows]
    return dump


def differences(live: Dump, rebuilt: Dump) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    """Per table, the rows only one of two dumps has (empty when they are equal)."""
    out: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for name in sorted(set(live) | set(rebuilt)):
        a, b = live.get(name, []), rebuilt.get(name, [])
        if a != b:
            out[name] = {
                "only_first": [r for r in a if r not in b][:5],
                "only_second": [r for r in b if r not in a][:5],
            }
    return out


def poll(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """True as soon as `condition()` holds; False once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# -- projector processes -----------------------------------------------------------------

READY_LINE = "following the event log from position"


def projector_env(database_url: str) -> dict[str, str]:
    """The environment of a `python -m projections` child on `database_url`."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
            "PEARL_ENV": "development",
            # Set, so the child never writes a development secret into the checkout.
            "JWT_SECRET": "projector-test-secret-" + "x" * 32,
        }
    )
    return env


class Projectors:
    """Starts real projector processes and guarantees none outlives the test."""

    def __init__(self, database_url: str, log_dir: Path) -> None:
        self.database_url = database_url
        self.log_dir = log_dir
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log_path = self.log_dir / f"projector-{len(self.started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "projections"],
                cwd=REPO_ROOT,
                env=projector_env(self.database_url),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.started.append((process, log_path))
        return process

    def log(self, process: subprocess.Popen[bytes]) -> str:
        for started, path in self.started:
            if started is process:
                return path.read_text(errors="replace")
        raise KeyError(process.pid)

    def wait_ready(self, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        """Wait until the process has started following the log (it logs a line then)."""
        ready = poll(lambda: READY_LINE in self.log(process) or process.poll() is not None, timeout)
        assert ready, f"projector {process.pid} did not start in {timeout}s"
        assert process.poll() is None, f"projector exited early:\n{self.log(process)}"

    def kill(self, process: subprocess.Popen[bytes]) -> int:
        process.send_signal(signal.SIGKILL)
        return process.wait(timeout=10)

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
        """SIGTERM, then the exit code (the projector should exit 0 within `timeout`)."""
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=timeout)

    def close(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)


@contextmanager
def projectors(database_url: str, log_dir: Path) -> Iterator[Projectors]:
    """Projector processes on `database_url`, all killed when the block ends."""
    started = Projectors(database_url, log_dir)
    try:
        yield started
    finally:
        started.close()


def local_tcp_ports(pid: int) -> set[int]:
    """The local TCP ports of the sockets process `pid` has open (Linux /proc)."""
    inodes: set[str] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # the process has gone
        return set()
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
