"""Batch inserts into the read tables with one `COPY ... FROM STDIN` per table.

The rows are the dicts the projector builds (as for SQLAlchemy insert-many); each column's
values are written in PostgreSQL's COPY text format by an encoder chosen from the column's
SQLAlchemy type, once per table. Columns left out of the rows (`row_id`, the generated
`search`) take their defaults, as with an INSERT. JSONB values are encoded like SQLAlchemy
does by default: `json.dumps`, and Python `None` as the JSON `null`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ARRAY, BigInteger, DateTime, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB

Encoder = Callable[[Any], str]
NULL = "\\N"


def _escape(text: str) -> str:
    """A value's text as one COPY field (backslash, tab and line breaks escaped)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t")
        return text.replace("\n", "\\n").replace("\r", "\\r")
    return text


def _text(value: Any) -> str:
    if value is None:
        return NULL
    return _escape(value if type(value) is str else str(value))


def _plain(value: Any) -> str:
    """Numbers, UUIDs and timestamps: their `str` needs no escaping."""
    return NULL if value is None else str(value)


def _json(value: Any) -> str:
    return _escape(json.dumps(value))


def _array_item(value: Any) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _array(value: Any) -> str:
    if value is None:
        return NULL
    return _escape("{" + ",".join(_array_item(item) for item in value) + "}")


def _encoder(column_type: Any) -> Encoder:
    if isinstance(column_type, JSONB):
        return _json
    if isinstance(column_type, ARRAY):
        return _array
    if isinstance(column_type, (BigInteger, Uuid, DateTime)):
        return _plain
    if isinstance(column_type, Text):
        return _text
    raise TypeError(f"no COPY encoder for {column_type!r}")


def copy_rows(cursor: Any, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table` with one COPY on `cursor`."""
    if not rows:
        return
    names = list(rows[0])
    encoders = [_encoder(table.c[name].type) for name in names]
    columns = list(zip(names, encoders, strict=True))
    buffer = io.StringIO()
    write = buffer.write
    for row in rows:
        write("\t".join([encode(row[name]) for name, encode in columns]))
        write("\n")
    buffer.seek(0)
    quoted = ", ".join(f'"{name}"' for name in names)
    cursor.copy_expert(f"COPY {table.name} ({quoted}) FROM STDIN", buffer)
