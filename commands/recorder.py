"""The event store's recorder: appends in one round trip, in parallel, never skipped by readers.

The stock eventsourcing-sqlalchemy recorder serialises every append with
`LOCK TABLE ... IN EXCLUSIVE MODE` so that notification ids become visible in id order. This
one lets appends to different streams commit in parallel and moves the ordering guarantee to
the readers:

- an append is one statement in its own (implicit) transaction: it takes the *shared*
  advisory lock `APPEND_LOCK`, then inserts its events, whose ids come from the table's
  sequence, and commits, all in one round trip. Optimistic concurrency stays with the unique
  index on (originator_id, originator_version): the loser gets IntegrityError.
- a reader of the notification log first proves a *horizon*: it takes the *exclusive*
  advisory lock in a short transaction, which waits only for appends in flight, and reads
  the sequence's last value. Every id at or below the horizon was taken by a transaction that
  has now ended, so its row is committed or gone for good; the reader only ever reads ids up
  to a proven horizon, and so never passes an event that commits late.

Writers that do not take the shared lock stay safe if they hold `LOCK TABLE ... EXCLUSIVE`
while they insert (as the archive import does): that blocks every other append until they
commit, so no higher id can commit before theirs.

With a caller's SQLAlchemy `session` the same statement runs in that session's transaction,
and the caller commits (the lock is held until then). Listeners (the projector) are woken by
a NOTIFY sent after the commit (`Notifier`), or within the caller's transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg2
import psycopg2.errors
from eventsourcing import persistence as es
from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from commands.appending import APPEND_LOCK, PreparedAppend, append_statement, stream_turn
from commands.notifier import Notifier

log = logging.getLogger(__name__)

READER_LOCK_TIMEOUT_MS = 2000  # a reader gives up (and retries later) rather than stall writers


class PearlRecorder(SQLAlchemyApplicationRecorder):
    """Application recorder for PostgreSQL with parallel appends and gap-safe reads."""

    def __init__(
        self,
        datastore: SQLAlchemyDatastore,
        *,
        events_table_name: str,
        schema_name: str | None = None,
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name, schema_name=schema_name)
        table = f"{schema_name}.{events_table_name}" if schema_name else events_table_name
        self.table = table
        if not isinstance(datastore.engine, Engine):
            raise es.ProgrammingError("PearlRecorder needs an SQLAlchemy engine (SQLALCHEMY_URL)")
        self.engine: Engine = datastore.engine
        self._horizon = 0  # every id up to here is final (committed or never will be)
        self._horizon_guard = threading.Lock()
        self.notifier = Notifier(self._notify)
        self.reader_lock_timeout_ms = READER_LOCK_TIMEOUT_MS
        self._held = threading.local()  # .raw: the connection `holding_connection` holds
        self._prepared_append = PreparedAppend(table)

    # -- connections ----------------------------------------------------------------------

    @contextmanager
    def holding_connection(self) -> Iterator[None]:
        """Run this thread's statements in the block on one pooled connection (a command's
        read and its append: one checkout instead of two). Each statement still commits."""
        if getattr(self._held, "raw", None) is not None:
            yield  # nested: the outer block holds one already
            return
        raw = self.engine.raw_connection()
        self._held.raw = raw
        try:
            yield
        finally:
            self._held.raw = None
            self._give_back(raw)

    @contextmanager
    def stream_turn(self, stream_id: UUID) -> Iterator[None]:
        """Hold `stream_id`'s turn for the block, on the connection `holding_connection`
        holds: one-event appends to the stream from other sessions wait until it ends (see
        `commands.appending`). For a writer that lost a race and reads and appends again."""
        if getattr(self._held, "raw", None) is None:
            raise es.ProgrammingError("a stream's turn is held on a held connection")
        key = stream_turn(stream_id)
        with self._cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", key)
        try:
            yield
        finally:
            held = getattr(self._held, "raw", None)
            if held is not None:  # (a broken connection took the lock with it)
                with self._cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor in autocommit mode (each statement commits) on the connection this thread
        holds, else on one from the pool for just this statement."""
        held = getattr(self._held, "raw", None)
        raw = held if held is not None else self.engine.raw_connection()
        driver: Any = raw.driver_connection
        try:
            driver.autocommit = True
            with driver.cursor() as cursor:
                yield cursor
        except psycopg2.Error as error:
            if driver.closed or error.pgcode is None:  # the connection, not the statement, failed
                raw.invalidate()
                if held is not None:  # the rest of the block checks out a fresh one
                    self._held.raw = None  # (`holding_connection` gives this one back)
            raise _translated(error) from error
        finally:
            if held is None:
                self._give_back(raw)

    @staticmethod
    def _give_back(raw: Any) -> None:
        driver: Any = raw.driver_connection
        try:
            if driver is not None and not driver.closed:
                driver.autocommit = False  # the pool's other users expect transactions
        except psycopg2.Error:
            raw.invalidate()
        raw.close()

    # -- appending ------------------------------------------------------------------------

    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        session: Session | None = None,
        unchanged: tuple[UUID, int] | None = None,
        **kwargs: Any,
    ) -> Sequence[int]:
        """Append `stored_events` in one statement; their notification ids, in order.

        Raises eventsourcing's IntegrityError when a version is taken already (or, in a
        caller's `session`, SQLAlchemy's IntegrityError, and the session must roll back).
        With `unchanged` (a stream and its version; not in a caller's session) nothing is
        recorded, and `StreamMoved` raised, if that stream has events after that version.
        """
        if kwargs.get("tracking") is not None:
            raise es.NotSupportedError("this recorder records no tracking positions")
        if not stored_events:
            return []
        if session is not None:  # the caller commits: NOTIFY in its transaction
            if unchanged is not None:
                raise es.NotSupportedError("`unchanged` is not supported in a caller's session")
            sql, params = append_statement(
                self.table, stored_events, notify_channel=self.channel_name
            )
            rows = session.connection().exec_driver_sql(sql, tuple(params)).all()
        else:
            with self._cursor() as cursor:
                if len(stored_events) == 1:
                    rows = self._prepared_append.run(cursor, stored_events[0], unchanged)
                else:
                    sql, params = append_statement(self.table, stored_events, unchanged=unchanged)
                    cursor.execute(sql, params)
                    rows = cursor.fetchall()
            if not rows:
                raise StreamMoved(f"stream {unchanged and unchanged[0]} has newer events")
            self.notifier.poke()
        if len(rows) == 1 == len(stored_events):
            return [int(rows[0][0])]
        ids = {(oid, int(version)): int(nid) for nid, oid, version in rows}
        return [ids[(str(e.originator_id), e.originator_version)] for e in stored_events]

    def _notify(self) -> None:
        with self._cursor() as cursor:
            cursor.execute(f"NOTIFY {self.channel_name}")

    # -- reading streams ------------------------------------------------------------------

    def select_events(
        self,
        originator_id: UUID | str,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """One stream's events by version, as committed (a writer that read too early loses on
        the unique index and retries)."""
        sql = f"SELECT originator_version, topic, state FROM {self.table} WHERE originator_id = %s"
        params: list[Any] = [str(originator_id)]
        if gt is not None:
            sql += " AND originator_version > %s"
            params.append(gt)
        if lte is not None:
            sql += " AND originator_version <= %s"
            params.append(lte)
        sql += " ORDER BY originator_version" + (" DESC" if desc else "")
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        with self._cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        stream = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        return [StoredEvent(stream, version, topic, bytes(state)) for version, topic, state in rows]

    def select_streams(self, after: Mapping[UUID, int]) -> dict[UUID, list[StoredEvent]]:
        """Several streams' events after the given versions, by version, in one round trip."""
        clause = "(originator_id = %s AND originator_version > %s)"
        sql = (
            f"SELECT originator_id, originator_version, topic, state FROM {self.table}"
            f" WHERE {' OR '.join([clause] * len(after))}"
            " ORDER BY originator_id, originator_version"
        )
        params = [value for stream, version in after.items() for value in (str(stream), version)]
        found: dict[UUID, list[StoredEvent]] = {stream: [] for stream in after}
        if not after:
            return found
        with self._cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        for oid, version, topic, state in rows:
            stream = oid if isinstance(oid, UUID) else UUID(oid)
            found[stream].append(StoredEvent(stream, version, topic, bytes(state)))
        return found

    # -- reading the notification log -----------------------------------------------------

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        """Notifications after `start` in id order, never beyond a proven horizon.

        Returns fewer than `limit` only when nothing more is final yet (or `stop` is hit).
        """
        after = 0 if start is None else (start - 1 if inclusive_of_start else start)
        horizon, proven = self._horizon, False
        if after >= horizon and (stop is None or stop > horizon):
            horizon, proven = self.prove_horizon(), True
        found = self._notifications(after, _upper(horizon, stop), limit, topics)
        if len(found) < limit and not proven and (stop is None or stop > horizon):
            after = found[-1].id if found else max(after, horizon)
            horizon = self.prove_horizon()
            found += self._notifications(after, _upper(horizon, stop), limit - len(found), topics)
        return found

    def prove_horizon(self) -> int:
        """Wait for the appends in flight and return the highest id that is final now.

        On a lock timeout (a writer's transaction held open) the last proven horizon stands.
        """
        sql = (
            "WITH guard AS MATERIALIZED (SELECT set_config('lock_timeout', %s, true)),"
            " held AS MATERIALIZED (SELECT pg_advisory_xact_lock(%s, %s) FROM guard)"
            " SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence(%s, 'id')), 0)"
            " FROM held"
        )
        params = (str(self.reader_lock_timeout_ms), *APPEND_LOCK, self.table)
        try:
            with self._cursor() as cursor:
                cursor.execute(sql, params)
                (value,) = cursor.fetchone()
        except es.OperationalError as error:
            if not isinstance(error.__cause__, psycopg2.errors.LockNotAvailable):
                raise
            log.warning("appends held the log for %d ms", self.reader_lock_timeout_ms)
            return self._horizon
        with self._horizon_guard:
            self._horizon = max(self._horizon, int(value))
            return self._horizon

    def _notifications(
        self, after: int, upto: int, limit: int, topics: Sequence[str]
    ) -> list[Notification]:
        if upto <= after or limit <= 0:
            return []
        sql = (
            "SELECT id, originator_id, originator_version, topic, state"
            f" FROM {self.table} WHERE id > %s AND id <= %s"
        )
        params: list[Any] = [after, upto]
        if topics:
            sql += " AND topic = ANY(%s)"
            params.append(list(topics))
        sql += " ORDER BY id LIMIT %s"
        params.append(limit)
        with self._cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return [
            Notification(
                id=nid,
                originator_id=oid if isinstance(oid, UUID) else UUID(oid),
                originator_version=version,
                topic=topic,
                state=bytes(state),
            )
            for nid, oid, version, topic, state in rows
        ]

    def max_notification_id(self) -> int | None:
        """The highest id committed so far (it may still have gaps below it in flight)."""
        with self._cursor() as cursor:
            cursor.execute(f"SELECT max(id) FROM {self.table}")
            (value,) = cursor.fetchone()
        return None if value is None else int(value)


class StreamMoved(es.IntegrityError):
    """An append that named a stream as unchanged found newer events in it: nothing was
    recorded (decide again on the stream's latest state)."""


class PearlFactory(SQLAlchemyFactory):
    """eventsourcing-sqlalchemy's factory with `PearlRecorder` as the application recorder."""

    application_recorder_class = PearlRecorder


def _upper(horizon: int, stop: int | None) -> int:
    return horizon if stop is None else min(horizon, stop)


def _translated(error: psycopg2.Error) -> es.PersistenceError:
    """The eventsourcing exception of the same DB-API name (what the Application catches)."""
    for kind in type(error).__mro__:
        found = getattr(es, kind.__name__, None)
        if isinstance(found, type) and issubclass(found, es.PersistenceError):
            return found(str(error))
    return es.PersistenceError(str(error))
