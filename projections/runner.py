"""Follows the notification log and applies it to the read tables in batches.

Each batch, its read-table writes and the new position share one transaction: a projector
killed at any instant resumes from the last committed position, losing and repeating
nothing. Only one projector per projection writes: the others wait on a PostgreSQL
advisory lock. When idle, the runner sleeps on LISTEN/NOTIFY so a new event is applied
within milliseconds.
"""

from __future__ import annotations

import logging
import select as io_select
import threading
import zlib
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.dialects.postgresql import insert

from commands.application import WorldHistory
from pearl import collector
from pearl.database_errors import DATABASE_AWAY
from projections import set_aside
from projections import tables as t
from projections.read_ahead import Batch, ReadAhead
from projections.read_model import BranchInfo, ReadModel
from projections.vacuum import VACUUM_AFTER, vacuum_read_tables

NAME = t.READ_MODEL
# Events per batch when following the log, and while behind it (catching up, or following
# after a full batch): bigger batches spread each batch's fixed costs over more events and
# fold more changes of one entity in memory (a row added and closed in one batch is
# inserted closed: no UPDATE, no read back).
FOLLOW_BATCH = 500
CATCH_UP_BATCH = 10000
BRANCHES_KEPT = 10_000  # what is known of branches, kept between batches (~200 bytes each)
log = logging.getLogger(__name__)
CHANNEL = "pearl_events"
_POSITIONS = t.projection_positions.name
LOCK_POSITION = f"SELECT position FROM {_POSITIONS} WHERE name = %s FOR UPDATE"
ADVANCE = f"UPDATE {_POSITIONS} SET position = %s, updated_at = now() WHERE name = %s"


class ProjectionRunner:
    """Catch up, then follow, one projection."""

    def __init__(
        self,
        engine: Engine,
        history: WorldHistory,
        name: str = NAME,
        batch_size: int | None = None,
    ) -> None:
        """`batch_size`, when given, is the size of every batch; else see FOLLOW_BATCH."""
        self.engine = engine
        self.history = history
        self.name = name
        self.batch_size = batch_size or FOLLOW_BATCH
        self.catch_up_batch_size = batch_size or CATCH_UP_BATCH
        self.lock_key = zlib.crc32(f"projection:{name}".encode())
        self._locked = False  # whether the current session holds the lock
        self._ahead: ReadAhead | None = None  # while catching up: the next batch, read early
        self._branch_info: dict[UUID, BranchInfo] = {}  # never changes: kept across batches

    # -- positions ------------------------------------------------------------------------

    def position(self) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(t.projection_positions.c.position).where(
                    t.projection_positions.c.name == self.name
                )
            ).scalar()
        return int(found or 0)

    def position_or_unknown(self) -> int:
        try:
            return self.position()
        except Exception:
            return -1

    def head(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(text("SELECT coalesce(max(id), 0) FROM pearl_events")).scalar_one()
            )

    # -- applying -----------------------------------------------------------------------

    def run_batch(self, limit: int | None = None) -> int:
        """Apply the next batch (`limit` events, else `batch_size`) in one transaction.

        Returns how many events it held. The batch's objects are freed by reference
        counting when it ends, so the cyclic collector is paused meanwhile (see
        `pearl.collector`).
        """
        limit = limit or self.batch_size
        with collector.paused(), self.engine.begin() as conn:
            position = self._locked_position(conn)
            ahead = self._ahead
            batch = ahead.take(position, limit) if ahead is not None else None
            notifications, events = batch or self._fetch(position, limit)
            if not notifications:
                return 0
            if ahead is not None and len(notifications) == limit:  # more may follow
                ahead.start(notifications[-1].id, limit)
            if len(self._branch_info) > BRANCHES_KEPT:
                self._branch_info.clear()
            model = ReadModel(conn, self._branch_info)
            model.prefetch(events)
            for notification, event in zip(notifications, events, strict=True):
                model.apply(notification.id, event)
            model.flush(then=(ADVANCE, (notifications[-1].id, self.name)))
            return len(notifications)

    def _locked_position(self, conn: Connection) -> int:
        """The committed position, its row locked until the batch commits (the row is made
        the first time: one round trip per batch, not two).

        This and `ADVANCE` are plain SQL on the DBAPI cursor: built with SQLAlchemy on every
        batch they cost a following projector a fifth of its CPU.
        """
        cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(LOCK_POSITION, (self.name,))
            found = cursor.fetchone()
            if found is None:
                conn.execute(
                    insert(t.projection_positions)
                    .values(name=self.name, position=0, updated_at=func.now())
                    .on_conflict_do_nothing()
                )
                cursor.execute(LOCK_POSITION, (self.name,))
                found = cursor.fetchone()
        finally:
            cursor.close()
        return int(found[0])

    def _fetch(self, after: int, limit: int) -> Batch:
        """The next `limit` notifications after position `after`, and their events."""
        with collector.paused():  # on the read-ahead thread too
            return self._fetch_unpaused(after, limit)

    def _fetch_unpaused(self, after: int, limit: int) -> Batch:
        notifications = self.history.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        return notifications, [self._decode(n) for n in notifications]

    def _decode(self, notification: Notification) -> Any:
        return self.history.mapper.to_domain_event(notification)

    def catch_up(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Apply everything recorded so far; report (position, head) after each batch.

        Each batch after the first is read (fetched and decoded) while the one before it
        is applied: see `projections.read_ahead`. One that will at least double the read
        tables sets their secondary indexes aside and builds them at the end (see
        `projections.set_aside`). A catch-up that applied `VACUUM_AFTER` events or more
        vacuums the read tables and refreshes their planner statistics at the end (see
        `projections.vacuum`).
        """
        head = self.head()
        if set_aside.worth_setting_aside(self.position(), head):
            set_aside.set_aside(self.engine, self.name)
        else:
            set_aside.restore(self.engine, self.name)  # left by a catch-up that died
        try:
            total = self._catch_up_batches(head, progress)
        except BaseException:
            try:
                set_aside.restore(self.engine, self.name)
            except Exception:
                log.exception("could not build the indexes set aside; the next projector will")
            raise
        set_aside.restore(self.engine, self.name)
        if total >= VACUUM_AFTER:
            vacuum_read_tables(self.engine)
        return total

    def _catch_up_batches(self, head: int, progress: Callable[[int, int], None] | None) -> int:
        total = 0
        ahead = self._ahead = ReadAhead(self._fetch)
        try:
            while True:
                done = self.run_batch(self.catch_up_batch_size)
                total += done
                if progress:
                    progress(self.position(), max(head, self.position()))
                if done < self.catch_up_batch_size:
                    return total
        finally:
            self._ahead = None
            ahead.close()

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Empty the read tables and project the whole log again from position 0.

        Safe beside a running projector: batches serialise on the position row, so each
        event is applied once, by whichever of them gets there first.
        """
        with self.engine.begin() as conn:
            names = ", ".join(table.name for table in t.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names}"))
            conn.execute(insert(t.projection_positions).values(name=self.name, position=0))
        return self.catch_up(progress)

    # -- following ------------------------------------------------------------------------

    def follow(self, stop: threading.Event, idle_wait: float = 1.0) -> None:
        """Run until `stop` is set, holding the projection's advisory lock throughout.

        When the session holding the lock and the LISTEN is lost (the database restarted or
        went away), the runner reconnects with backoff, takes the lock again and goes on
        from its committed position, instead of exiting.
        """
        failures = 0
        while not stop.is_set():
            self._locked = False
            try:
                self._follow_session(stop, idle_wait)
                return
            except DATABASE_AWAY as error:  # the session holding the lock broke
                failures = 1 if self._locked else failures + 1
                delay = min(30.0, 0.5 * 2**failures)
                reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
                log.warning(
                    "lost the database session (%s: %s); reconnecting in %.1f s",
                    type(error).__name__,
                    reason,
                    delay,
                )
                stop.wait(delay)

    def _restore_set_aside(self) -> None:
        """Build the indexes a catch-up that died set aside (reads are slow without them); a
        failure is logged, and following goes on."""
        try:
            set_aside.restore(self.engine, self.name)
        except DATABASE_AWAY:
            raise
        except Exception:
            log.exception("could not build the read-table indexes set aside")

    def _follow_session(self, stop: threading.Event, idle_wait: float) -> None:
        """Follow on one database session, until `stop` or until that session breaks."""
        raw = self.engine.raw_connection()
        try:
            driver: Any = raw.driver_connection
            driver.autocommit = True  # LISTEN and the session lock must not sit in a transaction
            cursor = raw.cursor()
            while not stop.is_set():
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (self.lock_key,))
                if cursor.fetchone() == (True,):
                    break
                stop.wait(idle_wait)  # another projector is active: stand by
            else:
                return
            self._locked = True
            self._restore_set_aside()
            cursor.execute(f"LISTEN {CHANNEL}")
            failures = 0
            limit = self.batch_size
            while not stop.is_set():
                try:
                    applied = self.run_batch(limit)
                except Exception:  # a database outage or an event it cannot apply
                    failures += 1
                    delay = min(30.0, 0.5 * 2**failures)
                    log.exception(
                        "batch after position %d failed; retrying in %.1f s",
                        self.position_or_unknown(),
                        delay,
                    )
                    stop.wait(delay)
                    continue
                failures = 0
                if applied == limit:  # behind the log: go on with catch-up sized batches
                    limit = self.catch_up_batch_size
                    continue
                limit = self.batch_size
                ready, _, _ = io_select.select([driver], [], [], idle_wait)
                if ready:
                    driver.poll()
                    driver.notifies.clear()
        finally:
            # the pooled connection must not keep the session lock or the LISTEN
            raw.invalidate()
