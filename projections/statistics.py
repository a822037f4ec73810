"""Planner statistics of the read tables, refreshed after a bulk catch-up.

A catch-up writes rows by the hundred thousand (a world imported, a projection rebuilt).
Until autovacuum next analyses the tables (up to a minute later, or longer under load),
PostgreSQL plans the queries against the statistics of the tables as they were, often
empty: it then walks the creation-order index filtering every row, where the JSONB, full
text or version indexes would answer at once (measured on the bench's 5,000-element world:
as-of pages 12 ms before, 1.5 ms after). PostgreSQL's own advice after a bulk load is to
ANALYZE, and so the projector does, once a catch-up has applied `ANALYZE_AFTER` events.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine, text

from projections import tables as t

log = logging.getLogger(__name__)

ANALYZE_AFTER = 10_000  # events applied by one catch-up


def analyze_read_tables(engine: Engine) -> float:
    """ANALYZE every read table; the seconds it took."""
    began = time.monotonic()
    names = ", ".join(table.name for table in t.metadata.sorted_tables)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"ANALYZE {names}"))
    took = time.monotonic() - began
    log.info("read tables analysed after a catch-up in %.2f s", took)
    return took
