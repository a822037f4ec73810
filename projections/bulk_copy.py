"""Batch inserts into the read tables with one `COPY ... FROM STDIN` per table.

The rows are the dicts the projector builds (as for SQLAlchemy insert-many); each column's
values are written in PostgreSQL's COPY text format by an encoder chosen from the column's
SQLAlchemy type, once per table. Columns left out of the rows (`row_id`, the generated
`search`) take their defaults, as with an INSERT. JSONB values are encoded like SQLAlchemy
does by default: `json.dumps`, and Python `None` as the JSON `null`.

`copy_lines` sends lines the caller encoded itself with the same field encoders (`text`,
`plain`, `json_text`), for rows it builds as tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psycopg2
from sqlalchemy import ARRAY, BigInteger, DateTime, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB

from commands.json_encoding import compact_encoder

Encoder = Callable[[Any], str]
NULL = "\\N"


def _escape(value: str) -> str:
    """A value's text as one COPY field (backslash, tab and line breaks escaped)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t")
        return value.replace("\n", "\\n").replace("\r", "\\r")
    return value


def text(value: Any) -> str:
    """A text column's field."""
    if value is None:
        return NULL
    return _escape(value if type(value) is str else str(value))


def plain(value: Any) -> str:
    """Numbers, UUIDs and timestamps: their `str` needs no escaping."""
    return NULL if value is None else str(value)


# `json.dumps` with its default options, compiled once (JSONB keeps no formatting anyway).
_dumps = compact_encoder(sort_keys=False, ensure_ascii=True)


def json_text(value: Any) -> str:
    """A JSONB column's field (`None` is the JSON `null`)."""
    return _escape(_dumps(value))


def _array_item(value: Any) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _array(value: Any) -> str:
    if value is None:
        return NULL
    return _escape("{" + ",".join(_array_item(item) for item in value) + "}")


def encoder(column_type: Any) -> Encoder:
    """The field encoder of a column of SQLAlchemy type `column_type`."""
    if isinstance(column_type, JSONB):
        return json_text
    if isinstance(column_type, ARRAY):
        return _array
    if isinstance(column_type, (BigInteger, Uuid, DateTime)):
        return plain
    if isinstance(column_type, Text):
        return text
    raise TypeError(f"no COPY encoder for {column_type!r}")


def copy_rows(cursor: Any, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table` with one COPY on `cursor`."""
    if not rows:
        return
    names = list(rows[0])
    columns = [(name, encoder(table.c[name].type)) for name in names]
    copy_lines(
        cursor,
        table.name,
        names,
        ("\t".join([encode(row[name]) for name, encode in columns]) for row in rows),
    )


def copy_lines(cursor: Any, table_name: str, names: Sequence[str], lines: Iterable[str]) -> None:
    """COPY `lines` (fields already encoded, tab-separated, no line break) into the
    `names` columns of `table_name`; nothing when there are none.

    The lines are encoded as the COPY reads them (`lines` may be a generator), so the
    server parses one chunk while the next is being encoded.
    """
    stream = _LineStream(iter(lines))
    if not stream.peek():
        return
    quoted = ", ".join(f'"{name}"' for name in names)
    try:
        cursor.copy_expert(f"COPY {table_name} ({quoted}) FROM STDIN", stream, size=CHUNK)
    except psycopg2.Error:
        if stream.error is not None:  # encoding a line failed: that is the error to report
            raise stream.error from None
        raise


CHUNK = 1 << 16  # characters handed to the driver per read


class _LineStream:
    """A read-only text file over an iterator of lines (what `copy_expert` reads)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._head = ""
        self.error: Exception | None = None  # what encoding a line raised, if anything

    def peek(self) -> bool:
        """Whether there is anything to read at all."""
        if not self._head:
            self._head = self.read(CHUNK)
        return bool(self._head)

    def read(self, size: int = -1) -> str:
        if self._head:
            head, self._head = self._head, ""
            return head
        parts: list[str] = []
        length = 0
        try:
            for line in self._lines:
                parts.append(line)
                length += len(line) + 1
                if length >= size > 0:
                    break
        except Exception as error:  # the driver would only report "error in .read()"
            self.error = error
            raise
        if not parts:
            return ""
        parts.append("")
        return "\n".join(parts)
