"""Secondary read-table indexes set aside while a catch-up bulk-loads the tables, then built.

A catch-up that will at least double the read tables (a rebuild, or the first projection
of a large import) drops the indexes reads use, loads the rows, and builds the indexes
again at its end: PostgreSQL's advice for a bulk load, since an index built once from the
sorted rows costs far less than one maintained row by row (300,000 events: 52-53 s to
project and 3 s to build the indexes, against 74 s projecting with them).

- Which: every index of the content tables and of the change log that is neither unique
  nor a primary key (32 of them). The unique ones stay: the projector finds an entity's
  current row through `rm_*_current_idx` and closes it by `row_id`, and they guard one
  current row per entity.
- Locks: both steps first lock the projection's position row, as every batch does, so a
  projector following beside a rebuild waits for them (and they for its batch in flight)
  instead of deadlocking on the tables. `DROP INDEX` then takes each table's ACCESS
  EXCLUSIVE lock. Within `LOCK_TIMEOUT`, or the catch-up keeps the indexes and goes on
  without setting them aside, rather than queue every read behind a long one.
- Crashes: each definition is recorded (`projection_set_aside_indexes`, migration 0006) in
  the transaction that drops the index. `restore` builds them all and forgets them in one
  transaction: at the end of the catch-up (a failed one too), before a catch-up not worth
  setting them aside for, and when a projector starts following. A process killed between
  the two leaves nothing lost, only reads slower until the next projector starts.
- Readers meanwhile: a rebuilt read model is incomplete until the catch-up ends anyway;
  reads still answer, from sequential scans.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from projections import tables as t

log = logging.getLogger(__name__)

TABLE = "projection_set_aside_indexes"
TABLES = [table.name for table in (*t.CONTENT.values(), t.changes)]
SET_ASIDE_FROM = 100_000  # events behind, at least (and at least as many as applied so far)
LOCK_TIMEOUT = "5s"  # how long setting the indexes aside may wait for a lock
BUILD_MEMORY = "256MB"  # maintenance_work_mem while the indexes are built
BUILD_ATTEMPTS = 3  # a build that deadlocks is tried again
LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK_DETECTED = "40P01"

# Every batch of the projection locks its position row first, then the tables it writes,
# one by one; DROP INDEX and CREATE INDEX lock tables one by one too. Taking that row
# first makes them wait for the batch in flight and keeps the next one out until they
# commit, instead of each holding a table the other waits for.
HOLD_BATCHES = text(
    f"SELECT position FROM {t.projection_positions.name} WHERE name = :name FOR UPDATE"
)

SECONDARY = text(
    "SELECT format('%I.%I', n.nspname, c.relname), pg_get_indexdef(i.indexrelid)"
    " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE i.indrelid::regclass::text = ANY(:tables)"
    " AND NOT i.indisunique AND NOT i.indisprimary"
    " ORDER BY 1"
)


def worth_setting_aside(position: int, head: int) -> bool:
    """Whether catching up from `position` to `head` loads enough rows to rebuild for."""
    behind = head - position
    return behind >= SET_ASIDE_FROM and behind >= position


def set_aside(engine: Engine, projection: str = t.READ_MODEL) -> int:
    """Drop the secondary indexes, recording their definitions; how many were dropped (0 if
    a lock did not come within LOCK_TIMEOUT, or a deadlock was detected: then every index
    stays)."""
    try:
        with engine.begin() as conn:
            conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            conn.execute(HOLD_BATCHES, {"name": projection})
            found = conn.execute(SECONDARY, {"tables": TABLES}).all()
            for name, definition in found:
                conn.execute(
                    text(
                        f"INSERT INTO {TABLE} (name, definition) VALUES (:name, :definition)"
                        " ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition"
                    ),
                    {"name": name, "definition": definition},
                )
                conn.exec_driver_sql(f"DROP INDEX {name}")
    except OperationalError as error:
        if _code(error) not in (LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED):
            raise
        log.warning("read tables busy: catching up with their indexes kept (%s)", error.orig)
        return 0
    if found:
        log.info("set aside %d read-table indexes for the catch-up", len(found))
    return len(found)


def restore(engine: Engine, projection: str = t.READ_MODEL) -> int:
    """Build every index set aside and forget it, in one transaction; how many."""
    if not set_aside_names(engine):  # the usual case, without waiting for a batch
        return 0
    attempt = 1
    while True:
        try:
            return _build(engine, projection)
        except OperationalError as error:
            if _code(error) != DEADLOCK_DETECTED or attempt == BUILD_ATTEMPTS:
                raise
            log.warning("building the indexes set aside deadlocked; trying again")
            attempt += 1


def _build(engine: Engine, projection: str) -> int:
    began = time.monotonic()
    with engine.begin() as conn:
        conn.execute(HOLD_BATCHES, {"name": projection})
        found = conn.execute(
            text(f"SELECT name, definition FROM {TABLE} ORDER BY name FOR UPDATE")
        ).all()
        if not found:  # built by someone else meanwhile
            return 0
        log.info("building %d read-table indexes set aside", len(found))
        conn.execute(text(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'"))
        for _, definition in found:
            conn.exec_driver_sql(_if_not_exists(definition))
        conn.execute(
            text(f"DELETE FROM {TABLE} WHERE name = ANY(:names)"),
            {"names": [name for name, _ in found]},
        )
    log.info("built %d read-table indexes in %.1f s", len(found), time.monotonic() - began)
    return len(found)


def set_aside_names(engine: Engine) -> list[str]:
    """The indexes set aside now (a catch-up is loading, or one died before building them)."""
    with engine.connect() as conn:
        return list(conn.execute(text(f"SELECT name FROM {TABLE} ORDER BY name")).scalars())


def _code(error: OperationalError) -> str | None:
    return getattr(error.orig, "pgcode", None)


def _if_not_exists(definition: str) -> str:
    """`CREATE INDEX name ...` as `CREATE INDEX IF NOT EXISTS name ...` (built by someone
    else meanwhile: nothing to do)."""
    head = "CREATE INDEX "
    if not definition.startswith(head):
        raise ValueError(f"not a plain index definition: {definition[:80]!r}")
    return "CREATE INDEX IF NOT EXISTS " + definition[len(head) :]
