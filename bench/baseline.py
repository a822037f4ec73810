"""Same-run baselines on the same server: the raw limits our figures are divided by.

The scratch table copies `pearl_events` (columns, types, constraints, indexes: whatever the
migrations give it now) into its own schema, with its own id sequence.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable
from uuid import uuid4

from bench import concurrency
from bench.concurrency import Stop
from bench.infra import connect

SCHEMA = "bench_baseline"
TABLE = f"{SCHEMA}.events"
COLUMNS = "originator_id, originator_version, topic, state"


def create_table(database_url: str) -> None:
    """(Re)create the scratch events table, empty."""
    with contextlib.closing(connect(database_url)) as conn, conn, conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        cur.execute(f"CREATE SCHEMA {SCHEMA}")
        cur.execute(
            f"CREATE TABLE {TABLE} (LIKE public.pearl_events INCLUDING CONSTRAINTS "
            "INCLUDING INDEXES)"
        )
        cur.execute(f"CREATE SEQUENCE {SCHEMA}.events_id_seq OWNED BY {TABLE}.id")
        cur.execute(f"ALTER TABLE {TABLE} ALTER id SET DEFAULT nextval('{SCHEMA}.events_id_seq')")


def mean_state_bytes(database_url: str) -> int:
    """The mean stored size of the events recorded so far (for rows of the same size)."""
    with contextlib.closing(connect(database_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT coalesce(avg(octet_length(state)), 400)::int FROM pearl_events")
        return int(cur.fetchone()[0])


def insert_job(arg: tuple[str, int], ready: Callable[[], None], stop: Stop) -> int:
    """One baseline writer: single-row INSERT + COMMIT into the scratch table, repeatedly."""
    database_url, state_bytes = arg
    stream, state, count = str(uuid4()), os.urandom(state_bytes), 0
    with contextlib.closing(connect(database_url)) as conn, conn.cursor() as cur:
        ready()
        while not stop.is_set():
            count += 1
            cur.execute(
                f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (%s, %s, %s, %s)",
                (stream, count, "commands.branch_events:ElementAdded", state),
            )
            conn.commit()
    return count


def insert_rate(
    database_url: str, writers: int, seconds: float, state_bytes: int, mode: str = "threads"
) -> float:
    """Single-row INSERT + COMMIT transactions per second, `writers` at once."""
    create_table(database_url)
    return concurrency.rate(insert_job, [(database_url, state_bytes)] * writers, seconds, mode)


def copy_rows(database_url: str, source_where: str) -> tuple[int, float]:
    """COPY the stored rows `source_where` selects into the scratch table: (rows, seconds).

    The rows are read out first (not timed), so the timed part is one `COPY ... FROM STDIN`
    and its COMMIT: the same number of rows of the same size as the events stored.
    """
    create_table(database_url)
    buffer = io.BytesIO()
    with contextlib.closing(connect(database_url)) as conn, conn.cursor() as cur:
        cur.copy_expert(
            f"COPY (SELECT {COLUMNS} FROM pearl_events WHERE {source_where} ORDER BY id) TO STDOUT",
            buffer,
        )
    rows = buffer.getvalue().count(b"\n")
    buffer.seek(0)
    with contextlib.closing(connect(database_url)) as conn, conn.cursor() as cur:
        began = time.perf_counter()
        cur.copy_expert(f"COPY {TABLE} ({COLUMNS}) FROM STDIN", buffer)
        conn.commit()
        elapsed = time.perf_counter() - began
        cur.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
        conn.commit()
    return rows, elapsed
