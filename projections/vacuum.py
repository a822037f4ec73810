"""The read tables tidied after a bulk catch-up: dead row versions vacuumed, statistics
refreshed.

A catch-up writes rows by the hundred thousand (a world imported, a projection rebuilt).
Two things then lag behind until autovacuum gets round to the tables (up to a minute
later, or longer under load, and then in the middle of whatever the service is doing):

- The planner's statistics: PostgreSQL plans against the tables as they were, often
  empty, and walks the creation-order index filtering every row where the JSONB, full text
  or version indexes would answer at once (the bench's 5,000-element world: as-of pages
  12 ms before, 1.5 ms after).
- Dead row versions: every update of an entity closes its current row (`valid_to` set),
  which leaves a dead tuple behind, and the partial indexes of current rows keep pointing
  at it. On the bench's 1,000,000-event world a metadata containment read visited 7,000
  heap pages for its 2,000 rows (80 ms) until a VACUUM, then 2,000 (10 ms); the VACUUM of
  the whole world's read tables took about 1.3 s.

PostgreSQL's own advice after a bulk load is to VACUUM ANALYZE, and so the projector does,
once a catch-up has applied `VACUUM_AFTER` events. It does not skip a table autovacuum is
busy with: autovacuum, throttled, can take minutes over a big table, while reads step over
every dead row version; waiting on its lock cancels it (after `deadlock_timeout`), and this
VACUUM, not throttled, does the job at once.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine, text

from projections import tables as t

log = logging.getLogger(__name__)

VACUUM_AFTER = 10_000  # events applied by one catch-up


def vacuum_read_tables(engine: Engine) -> float:
    """VACUUM (ANALYZE) every read table; the seconds it took."""
    began = time.monotonic()
    names = ", ".join(table.name for table in t.metadata.sorted_tables)
    # VACUUM cannot run inside a transaction block: an autocommit connection
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM (ANALYZE) {names}"))
    took = time.monotonic() - began
    log.info("read tables vacuumed and analysed after a catch-up in %.2f s", took)
    return took
