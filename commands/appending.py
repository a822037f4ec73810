"""The SQL of an append to the event store (see `commands.recorder` for why it looks so).

One statement takes the shared advisory lock, then inserts the events (ids drawn from the
table's sequence, in the events' order) and returns their ids; optionally it also NOTIFYs
(in a caller's transaction) or records nothing when a named stream has moved past a version
(the *guard*: one index probe). The one-event append, the hot path of every command, is also
a server-side prepared statement: parsed and planned once per connection, not per command.

The one-event append first takes its stream's *turn* lock, shared (before the append lock,
so that nothing waits for a turn while holding that). A writer that lost a race for the
stream holds the turn exclusively while it reads what is new and appends again
(`PearlRecorder.stream_turn`): one-event appends to that stream from other processes wait
those few milliseconds for it, so a writer retrying is not overtaken again and again.
"""

from __future__ import annotations

import weakref
import zlib
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg2
import psycopg2.errors
from eventsourcing.persistence import StoredEvent

# Two-int advisory key: a namespace apart from the one-bigint keys the projector uses.
APPEND_LOCK = (zlib.crc32(b"pearl:append") & 0x7FFFFFFF, 1)
STREAM_TURNS = zlib.crc32(b"pearl:stream-turn") & 0x7FFFFFFF  # the turn locks' namespace
GUARD = (
    " WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE originator_id = {} AND originator_version > {})"
)


def stream_turn(stream_id: UUID | str) -> tuple[int, int]:
    """The two-int advisory key of a stream's turn lock (streams that share one just wait
    for each other's retries too)."""
    digest = zlib.crc32(str(stream_id).encode())
    return STREAM_TURNS, digest - (1 << 32) if digest >= 1 << 31 else digest


def _insert(table: str, values: str, guard: str, notify: str = "", turn: str = "") -> str:
    # The ids are drawn after the lock (the CTE is a fence) and in the events' order; the
    # stream's turn (when taken) comes before the append lock.
    fence = ""
    if turn:
        fence = f"turn AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared({turn})), "
    after_turn = " FROM turn" if turn else ""
    return (
        f"WITH {fence}held AS MATERIALIZED"
        f" (SELECT pg_advisory_xact_lock_shared({{}}, {{}}){notify}{after_turn})"
        f" INSERT INTO {table} (originator_id, originator_version, topic, state)"
        " SELECT v.originator_id, v.originator_version, v.topic, v.state"
        f" FROM held, (VALUES {values})"
        " AS v (originator_id, originator_version, topic, state, position)"
        f"{guard} ORDER BY v.position"
        " RETURNING id, originator_id::text, originator_version"
    )


def append_statement(
    table: str,
    stored_events: Sequence[StoredEvent],
    *,
    notify_channel: str | None = None,
    unchanged: tuple[UUID, int] | None = None,
) -> tuple[str, list[Any]]:
    """Any number of events, as one statement with its parameters (psycopg2 style)."""
    params: list[Any] = [*APPEND_LOCK]
    if notify_channel is not None:
        params.append(notify_channel)
    values = []
    for order, event in enumerate(stored_events):
        values.append(f"(%s::uuid, %s::bigint, %s::text, %s::bytea, {order})")
        params += (str(event.originator_id), event.originator_version, event.topic)
        params.append(psycopg2.Binary(event.state))
    guard = ""
    if unchanged is not None:
        guard = GUARD.format("%s::uuid", "%s", table=table)
        params += (str(unchanged[0]), unchanged[1])
    notify = ", pg_notify(%s, '')" if notify_channel is not None else ""
    return _insert(table, ", ".join(values), guard, notify).format("%s", "%s"), params


class PreparedAppend:
    """The one-event append, with and without the guard, as prepared statements."""

    def __init__(self, table: str) -> None:
        name = f"pearl_append_t_{zlib.crc32(table.encode()):x}"
        row = "($5, $6, $7, $8, 0)"
        plain = _insert(table, row, "", turn="$3, $4")
        guarded = _insert(table, row, GUARD.format("$9", "$10", table=table), turn="$3, $4")
        types = "integer, integer, integer, integer, uuid, bigint, text, bytea"
        self.prepare = {
            False: f"PREPARE {name} ({types}) AS {plain.format('$1', '$2')}",
            True: f"PREPARE {name}_g ({types}, uuid, bigint) AS {guarded.format('$1', '$2')}",
        }
        self.execute = {
            False: f"EXECUTE {name} (%s, %s, %s, %s, %s, %s, %s, %s)",
            True: f"EXECUTE {name}_g (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        }
        # By id of driver connection: that connection, and the variants (guarded or not) it
        # has prepared. (A WeakKeyDictionary costs more than the rest of an append.)
        self._known: dict[int, tuple[weakref.ref[Any], set[bool]]] = {}

    def run(self, cursor: Any, event: StoredEvent, unchanged: tuple[UUID, int] | None) -> list[Any]:
        """Append one event on `cursor` (a psycopg2 cursor): its returned rows. Prepared in the
        same round trip the first time on a connection (a failed first EXECUTE may leave the
        statement prepared or not: either is put right)."""
        variant = unchanged is not None
        connection = cursor.connection
        entry = self._known.get(id(connection))
        if entry is None or entry[0]() is not connection:  # new, or a new one at that address
            entry = self._known[id(connection)] = (weakref.ref(connection), set())
        known = entry[1]
        prepared = variant in known
        sql, params = self.statement(event, unchanged, prepared=prepared)
        try:
            cursor.execute(sql, params)
        except (
            psycopg2.errors.InvalidSqlStatementName,
            psycopg2.errors.DuplicatePreparedStatement,
        ):
            sql, params = self.statement(event, unchanged, prepared=not prepared)
            cursor.execute(sql, params)
        known.add(variant)
        return list(cursor.fetchall())

    def statement(
        self, event: StoredEvent, unchanged: tuple[UUID, int] | None, *, prepared: bool
    ) -> tuple[str, list[Any]]:
        """EXECUTE of the prepared statement, preceded by its PREPARE unless `prepared`."""
        guarded = unchanged is not None
        params: list[Any] = [
            *APPEND_LOCK,
            *stream_turn(event.originator_id),
            str(event.originator_id),
            event.originator_version,
            event.topic,
            psycopg2.Binary(event.state),
        ]
        if unchanged is not None:
            params += (str(unchanged[0]), unchanged[1])
        sql = self.execute[guarded]
        return (sql if prepared else f"{self.prepare[guarded]}; {sql}"), params
