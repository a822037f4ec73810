"""Versioned content rows, buffered per projector batch.

An entity's change closes its current row (`valid_to` = the version) and adds the next one.
Rows are inserted once per batch (one COPY per table), the current rows a batch will close
are fetched up front in one query per table, and their closures are written in one statement
per table: an entity changed several times in one batch costs no round trip after the first.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg2.extras import execute_values
from sqlalchemy import Connection, update

from commands import branch_events as ev
from commands.dates import Calendar
from projections import tables as t
from projections.bulk_copy import copy_rows

Key = tuple[str, UUID, UUID]  # (table name, branch id, entity id)
Row = dict[str, Any]


# The columns of a stored row the projector reads back (all but the generated `search`).
# SQLAlchemy's psycopg2 dialect registers psycopg2's UUID casters on every connection, so
# uuid columns read back on the raw cursor as `UUID`s, as through SQLAlchemy.
_STORED_COLUMNS = {
    table.name: [c.name for c in table.columns if c.name != "search"]
    for table in t.CONTENT.values()
}


class ContentRows:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._rows: dict[str, list[Row]] = {}  # to insert, per table
        self._current: dict[Key, Row] = {}  # the current row of an entity, among those
        self._stored: dict[Key, Row] = {}  # current stored rows fetched for the batch
        self._closures: dict[str, list[tuple[int, int]]] = {}  # (row_id, valid_to) per table

    def prefetch(self, events: list[Any]) -> None:
        """Fetch, one query per table, the current rows the batch's changes will close."""
        wanted: dict[str, set[tuple[UUID, UUID]]] = {}
        for event in events:
            if isinstance(event, ev.ContentEvent) and not isinstance(event, ev.EntityAdded):
                table_name = t.CONTENT[event.collection].name
                wanted.setdefault(table_name, set()).add(
                    (event.originator_id, UUID(event.entity_id))
                )
        cursor = self._cursor()
        for name, keys in wanted.items():
            columns = _STORED_COLUMNS[name]
            branch_ids, ids = zip(*keys, strict=True)
            listed = ", ".join(f'"{c}"' for c in columns)
            cursor.execute(
                f"SELECT {listed} FROM {name}"
                " WHERE valid_to IS NULL AND (branch_id, id) IN"
                " (SELECT * FROM unnest(%s::uuid[], %s::uuid[]))",
                ([str(b) for b in branch_ids], [str(i) for i in ids]),
            )
            for found in cursor.fetchall():
                row = dict(zip(columns, found, strict=True))
                self._stored[(name, row["branch_id"], row["id"])] = row

    def _cursor(self) -> Any:
        """A cursor of the DBAPI connection under `conn` (in the same transaction)."""
        return self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def close(self, key: Key, version: int) -> Row:
        """Close the entity's current row at `version` and return it."""
        current = self._current.pop(key, None)
        if current is not None:
            current["valid_to"] = version  # still pending: close it in memory
            return current
        if key in self._stored:
            current = self._stored.pop(key)  # prefetched: close it at flush
            self._closures.setdefault(key[0], []).append((current["row_id"], version))
            return current
        table = t.metadata.tables[key[0]]
        return dict(
            self.conn.execute(
                update(table)
                .where(
                    table.c.branch_id == key[1], table.c.id == key[2], table.c.valid_to.is_(None)
                )
                .values(valid_to=version)
                .returning(*[c for c in table.columns if c.name != "search"])
            )
            .mappings()
            .one()
        )

    def add(self, key: Key, row: Row) -> None:
        self._rows.setdefault(key[0], []).append(row)
        self._current[key] = row

    def flush(self) -> None:
        """Write closures and new rows (before anything reads content rows back)."""
        cursor = self._cursor()
        for name, closures in self._closures.items():
            execute_values(
                cursor,
                f"UPDATE {name} SET valid_to = v.valid_to FROM (VALUES %s) AS v(row_id, valid_to)"
                f" WHERE {name}.row_id = v.row_id",
                closures,
                page_size=len(closures),
            )
        for name, rows in self._rows.items():
            copy_rows(cursor, t.metadata.tables[name], rows)
        self._rows, self._current, self._closures = {}, {}, {}


def next_fields(event: ev.ContentEvent, current: Row) -> dict[str, Any]:
    """The entity's fields after `event`, computed by the event's own `apply`."""
    fields = _plain({name: current[name] for name in t.FIELDS[event.collection]})
    fields["id"] = event.entity_id
    event.apply(_Aggregate(event.collection, event.entity_id, fields))
    return fields


def row_values(collection: str, fields: dict[str, Any], calendar: Calendar | None) -> Row:
    """The column values of a collection's row from the entity's fields."""
    row = {name: fields.get(name) for name in t.FIELDS[collection]}
    for ref in ("parent_id", "timeline_id", "location_id"):
        if ref in row and row[ref] is not None:
            row[ref] = UUID(str(row[ref]))
    if "element_ids" in row:
        row["element_ids"] = [UUID(str(e)) for e in row["element_ids"] or []]
    if "tags" in row:
        row["tags"] = list(row["tags"] or [])
    if "metadata" in row:
        row["metadata"] = row["metadata"] or {}
    if calendar is not None:
        row["start_ordinal"], row["end_ordinal"] = ordinals(calendar, row["start"], row["end"])
    return row


def ordinals(calendar: Calendar, start: Any, end: Any) -> tuple[int, int]:
    """Sort keys of a span: first day of `start`, last day of `end` (or of `start`)."""
    last = end if end is not None else start
    try:
        return calendar.ordinal(start), calendar.ordinal(last, end_of_period=True)
    except (IndexError, KeyError, TypeError):
        # A date the current calendar cannot place (e.g. a month it no longer has).
        return 0, 0


class _Aggregate:
    """Just enough of a Branch for a content event's `apply` to change one entity."""

    def __init__(self, collection: str, entity_id: str, fields: dict[str, Any]) -> None:
        self.entities = {collection: {entity_id: fields}}
        self.base_version = 0


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    """Row values as the write model holds them: ids as strings."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, UUID):
            out[key] = str(value)
        elif isinstance(value, list):
            out[key] = [str(v) if isinstance(v, UUID) else v for v in value]
        else:
            out[key] = value
    return out
