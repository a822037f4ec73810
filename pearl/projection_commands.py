"""`pearl projections status|rebuild`: where each projection stands, and rebuilding one."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from sqlalchemy import create_engine, text

from commands.application import WorldHistory
from pearl import config, launcher
from pearl.devservers import database_url, start_postgres
from pearl.processes import PortInUseError, check_port_free
from projections import set_aside
from projections.runner import ProjectionRunner


@contextmanager
def database() -> Iterator[str]:
    """DATABASE_URL, else the embedded server: the running one, or one started for this call."""
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    port = launcher.Settings.from_env().pg_port
    try:
        check_port_free(port, what="embedded PostgreSQL")
    except PortInUseError:  # `pearl up` is running: use its server
        yield database_url(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres", "pearl")
        return
    with start_postgres(config.data_dir(), port) as postgres:
        yield postgres.url


def status() -> int:
    """Print each projection's position, the head of the log, and the lag between them."""
    with database() as url:
        engine = create_engine(url)
        with engine.connect() as conn:
            head = conn.execute(text("SELECT coalesce(max(id), 0) FROM pearl_events")).scalar_one()
            rows = conn.execute(
                text("SELECT name, position, updated_at FROM projection_positions ORDER BY name")
            ).all()
        aside = set_aside.set_aside_names(engine)
        engine.dispose()
    print(f"{'projection':<16} {'position':>10} {'head':>10} {'lag':>8}  updated")
    if not rows:
        print(f"{'read_model':<16} {0:>10} {head:>10} {head:>8}  never")
    for name, position, updated_at in rows:
        lag = head - position
        print(f"{name:<16} {position:>10} {head:>10} {lag:>8}  {updated_at:%Y-%m-%d %H:%M:%S}")
    if aside:
        print(
            f"{len(aside)} read-table indexes set aside: a catch-up is loading the read tables,"
            " or one stopped before building them again (a projector builds them when it starts)"
        )
    return 0


def rebuild() -> int:
    """Empty the read tables and project the whole event log again, showing progress (and
    the steps around the batches: indexes set aside and built, the VACUUM)."""
    with database() as url, steps_shown(sys.stderr):
        engine = create_engine(url)
        runner = ProjectionRunner(engine, WorldHistory.on_database(url))
        started = time.monotonic()
        applied = runner.rebuild(progress_bar(sys.stderr))
        elapsed = time.monotonic() - started
        engine.dispose()
    sys.stderr.write("\n")
    rate = applied / elapsed if elapsed > 0 else 0.0
    print(f"pearl: rebuilt read_model from {applied} events in {elapsed:.1f} s ({rate:.0f}/s)")
    return 0


@contextmanager
def steps_shown(stream: TextIO) -> Iterator[None]:
    """The projector's own log lines (INFO and up) on `stream`, each on a line of its own
    beside the progress bar, while the block runs."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("\npearl: %(message)s"))
    logger = logging.getLogger("projections")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def progress_bar(stream: object, width: int = 30) -> Callable[[int, int], None]:
    """A callback drawing `[#####.....]  52%  5200/10000 events` on one line."""

    def draw(position: int, head: int) -> None:
        share = 1.0 if head == 0 else min(1.0, position / head)
        filled = int(share * width)
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {share:4.0%}  {position}/{head} events"
        stream.write(line)  # type: ignore[attr-defined]
        stream.flush()  # type: ignore[attr-defined]

    return draw
