"""Read-your-writes: wait, bounded, until the projection has passed a position."""

from __future__ import annotations

import time

from sqlalchemy import Engine, select

from projections import tables as t


def projected_position(engine: Engine, name: str = t.READ_MODEL) -> int:
    with engine.connect() as conn:
        found = conn.execute(
            select(t.projection_positions.c.position).where(t.projection_positions.c.name == name)
        ).scalar()
    return int(found or 0)


def wait_for(engine: Engine, min_position: int, timeout: float, interval: float = 0.01) -> bool:
    """True once the projection has applied `min_position`; False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if projected_position(engine) >= min_position:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, 0.1)
