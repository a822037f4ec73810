"""Versioned content rows, buffered per projector batch.

An entity's change closes its current row (`valid_to` = the version) and adds the next one.
Rows are inserted once per batch (one COPY per table), the current rows a batch will close
are fetched up front in one query per table, and their closures are written in one statement
per table: an entity changed several times in one batch costs no round trip after the first,
and a row both added and closed within the batch is inserted already closed.

Ids are handled as their canonical text (what PostgreSQL prints for a uuid), which is what
the rows are keyed by, what the write model's entities hold and what COPY sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import itemgetter
from typing import Any
from uuid import UUID

from sqlalchemy import ARRAY, Connection, Uuid

from commands import branch_events as ev
from commands.dates import Calendar
from projections import tables as t
from projections.bulk_copy import Encoder, copy_lines, encoder

Key = tuple[str, str, str]  # (table name, branch id, entity id), ids as canonical text
Row = dict[str, Any]


def _selected(column: Any) -> str:
    """A stored column as the projector reads it back: uuids as text."""
    if isinstance(column.type, Uuid):
        return f'"{column.name}"::text'
    if isinstance(column.type, ARRAY) and isinstance(column.type.item_type, Uuid):
        return f'"{column.name}"::text[]'
    return f'"{column.name}"'


# The columns of a stored row the projector reads back (all but the generated `search`).
_STORED = {
    table.name: [c for c in table.columns if c.name != "search"] for table in t.CONTENT.values()
}
_NAMES = {name: [c.name for c in columns] for name, columns in _STORED.items()}
_SELECT = {name: ", ".join(_selected(c) for c in columns) for name, columns in _STORED.items()}
_ENCODERS: dict[str, dict[str, Encoder]] = {
    name: {c.name: encoder(c.type) for c in columns} for name, columns in _STORED.items()
}


class Ids:
    """Canonical text of ids given as UUIDs or strings, remembered for one batch."""

    def __init__(self) -> None:
        self._known: dict[Any, str] = {}

    def __call__(self, value: Any) -> str:
        found = self._known.get(value)
        if found is None:
            found = str(value if isinstance(value, UUID) else UUID(str(value)))
            self._known[value] = found
        return found


class ContentRows:
    """The content rows one batch adds and closes, written by `flush`."""

    def __init__(self, conn: Connection, ids: Ids) -> None:
        self.conn = conn
        self.ids = ids
        self._rows: dict[str, list[Row]] = {}  # to insert, per table
        self._current: dict[Key, Row] = {}  # the current row of an entity, among those
        self._stored: dict[Key, Row] = {}  # current stored rows fetched for the batch
        self._closures: dict[str, tuple[list[int], list[int]]] = {}  # row ids, valid_to

    def key(self, event: ev.ContentEvent) -> Key:
        """The row key of the entity `event` changes."""
        return (
            t.CONTENT[event.collection].name,
            self.ids(event.originator_id),
            self.ids(event.entity_id),
        )

    def prefetch(self, events: list[Any]) -> None:
        """Fetch, one query per table, the current rows the batch's changes will close."""
        wanted: dict[str, set[tuple[str, str]]] = {}
        for event in events:
            if isinstance(event, ev.ContentEvent) and not isinstance(event, ev.EntityAdded):
                name, branch_id, entity_id = self.key(event)
                wanted.setdefault(name, set()).add((branch_id, entity_id))
        cursor = self._cursor()
        for name, keys in wanted.items():
            branch_ids, ids = zip(*keys, strict=True)
            cursor.execute(
                f"SELECT {_SELECT[name]} FROM {name}"
                " WHERE valid_to IS NULL AND (branch_id, id) IN"
                " (SELECT * FROM unnest(%s::uuid[], %s::uuid[]))",
                (list(branch_ids), list(ids)),
            )
            columns = _NAMES[name]
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
        current = self._stored.pop(key, None)
        if current is not None:  # prefetched: close it at flush
            row_ids, valid_tos = self._closures.setdefault(key[0], ([], []))
            row_ids.append(current["row_id"])
            valid_tos.append(version)
            return current
        name = key[0]
        cursor = self._cursor()
        cursor.execute(
            f"UPDATE {name} SET valid_to = %s"
            " WHERE branch_id = %s AND id = %s AND valid_to IS NULL"
            f" RETURNING {_SELECT[name]}",
            (version, key[1], key[2]),
        )
        found = cursor.fetchall()
        if len(found) != 1:
            raise LookupError(f"{name} has no current row of {key[2]} on branch {key[1]}")
        return dict(zip(_NAMES[name], found[0], strict=True))

    def add(self, key: Key, row: Row) -> None:
        self._rows.setdefault(key[0], []).append(row)
        self._current[key] = row

    def flush(self) -> None:
        """Write closures and new rows (before anything reads content rows back)."""
        cursor = self._cursor()
        for name, (row_ids, valid_tos) in self._closures.items():
            cursor.execute(
                f"UPDATE {name} SET valid_to = v.valid_to"
                " FROM unnest(%s::bigint[], %s::bigint[]) AS v(row_id, valid_to)"
                f" WHERE {name}.row_id = v.row_id",
                (row_ids, valid_tos),
            )
        for name, rows in self._rows.items():
            names = list(rows[0])
            copy_lines(cursor, name, names, _lines(rows, names, _ENCODERS[name]))
        self._rows, self._current, self._closures = {}, {}, {}


def _lines(rows: list[Row], names: list[str], encoders: dict[str, Encoder]) -> Iterator[str]:
    """COPY lines of `rows` (dicts with the keys `names`, in that order)."""
    encode = [encoders[name] for name in names]
    if len(names) == 1:  # itemgetter of one name gives the value, not a tuple
        yield from (encode[0](row[names[0]]) for row in rows)
        return
    values = itemgetter(*names)
    for row in rows:
        yield "\t".join([e(v) for e, v in zip(encode, values(row), strict=True)])


def next_fields(event: ev.ContentEvent, current: Row) -> dict[str, Any]:
    """The entity's fields after `event`, computed by the event's own `apply`."""
    fields = {name: current[name] for name in t.FIELDS[event.collection]}
    fields["id"] = event.entity_id
    event.apply(_Aggregate(event.collection, event.entity_id, fields))
    return fields


def row_values(collection: str, fields: dict[str, Any], spans: Ordinals | None, ids: Ids) -> Row:
    """The column values of a collection's row from the entity's fields (ids as text)."""
    row = {name: fields.get(name) for name in t.FIELDS[collection]}
    for ref in ("parent_id", "timeline_id", "location_id"):
        if ref in row and row[ref] is not None:
            row[ref] = ids(row[ref])
    if "element_ids" in row:
        row["element_ids"] = [ids(e) for e in row["element_ids"] or []]
    if "tags" in row:
        row["tags"] = list(row["tags"] or [])
    if "metadata" in row:
        row["metadata"] = row["metadata"] or {}
    if spans is not None:
        row["start_ordinal"], row["end_ordinal"] = spans(row["start"], row["end"])
    return row


def ordinals(calendar: Calendar, start: Any, end: Any) -> tuple[int, int]:
    """Sort keys of a span: first day of `start`, last day of `end` (or of `start`)."""
    last = end if end is not None else start
    try:
        return calendar.ordinal(start), calendar.ordinal(last, end_of_period=True)
    except (IndexError, KeyError, TypeError):
        # A date the current calendar cannot place (e.g. a month it no longer has).
        return 0, 0


class Ordinals:
    """`ordinals` on one calendar, remembered by date (a pure function of the two)."""

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self._known: dict[tuple[Any, Any], tuple[int, int]] = {}

    def __call__(self, start: Any, end: Any) -> tuple[int, int]:
        try:
            key = (_date_key(start), _date_key(end))
            found = self._known.get(key)
        except TypeError:  # an unhashable value in a date: nothing to remember it by
            return ordinals(self.calendar, start, end)
        if found is None:
            found = self._known[key] = ordinals(self.calendar, start, end)
        return found


def _date_key(date: Any) -> tuple[tuple[str, int], ...] | None:
    """A date as a key: only plain `{name: int}` dates (or none) are remembered."""
    if date is None:
        return None
    if type(date) is not dict or any(type(v) is not int for v in date.values()):
        raise TypeError("not a plain date")
    return tuple(date.items())


class _Aggregate:
    """Just enough of a Branch for a content event's `apply` to change one entity."""

    def __init__(self, collection: str, entity_id: str, fields: dict[str, Any]) -> None:
        self.entities = {collection: {entity_id: fields}}
        self.base_version = 0
