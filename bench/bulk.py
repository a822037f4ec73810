"""`import` and `projection-catch-up`: a big archive into the event store, then the read tables.

Import runs `import_archive`, the code behind `POST /worlds/import` and `pearl worlds import`,
reading the archive file line by line. Catch-up runs `ProjectionRunner.catch_up`, what the
projector does on start, over everything not yet projected. Both are compared with one
`COPY` of the same stored rows into a copy of the events table (see bench.baseline).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from uuid import uuid4

from sqlalchemy import create_engine

from bench import baseline
from bench.archives import Archive
from bench.report import progress
from commands.application import WorldHistory
from commands.archive_format import read_lines
from commands.archive_import import ImportedWorld, import_archive
from commands.provenance import Provenance
from projections.runner import ProjectionRunner


@dataclass(frozen=True)
class Timed:
    events: int
    seconds: float
    first_position: int
    last_position: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def import_file(database_url: str, archive: Archive, owner_id: str) -> Timed:
    """Import `archive` for `owner_id` (who must exist) as the API does; time it."""
    engine = create_engine(database_url)
    history = WorldHistory.on_database(database_url)
    importer = Provenance(actor=owner_id, command_id=str(uuid4()))
    try:
        with archive.path.open("rb") as stream:
            began = time.perf_counter()
            imported: ImportedWorld = import_archive(history, engine, read_lines(stream), importer)
            elapsed = time.perf_counter() - began
    finally:
        history.close()
        engine.dispose()
    first = imported.position - imported.events + 1
    return Timed(imported.events, elapsed, first, imported.position)


def copy_baseline(database_url: str, timed: Timed) -> float:
    """Rows per second of one COPY of the rows `timed` stored."""
    where = f"id BETWEEN {timed.first_position} AND {timed.last_position}"
    rows, seconds = baseline.copy_rows(database_url, where)
    return rows / seconds


def catch_up(database_url: str) -> Timed:
    """Project everything recorded so far, as the projector does when it starts."""
    engine = create_engine(database_url)
    history = WorldHistory.on_database(database_url)
    runner = ProjectionRunner(engine, history)
    start = runner.position()
    last_report = [time.monotonic()]

    def report(position: int, head: int) -> None:
        if time.monotonic() - last_report[0] > 30:
            last_report[0] = time.monotonic()
            progress(f"  projected {position - start:,} of {head - start:,} events")

    try:
        began = time.perf_counter()
        events = runner.catch_up(report)
        elapsed = time.perf_counter() - began
        end = runner.position()
    finally:
        history.close()
        engine.dispose()
    return Timed(events, elapsed, start + 1, end)
