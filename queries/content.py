"""Reads of a branch's content from the read tables: one entity, filtered pages, search.

Every read can be made as of a branch version: a row answers for version N when
`valid_from <= N < valid_to` (or `valid_to` is null).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Connection,
    Numeric,
    Select,
    Text,
    Uuid,
    and_,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from projections import tables as t
from queries import cursors

Row = dict[str, Any]


@dataclass(frozen=True)
class Filters:
    """What a list may be narrowed by; None means 'not asked for'."""

    kind: str | None = None
    tag: str | None = None
    parent_id: UUID | None = None
    roots_only: bool = False
    timeline_id: UUID | None = None
    element_id: UUID | None = None
    location_id: UUID | None = None
    q: str | None = None
    metadata: dict[str, Any] | None = None
    from_ordinal: int | None = None
    to_ordinal: int | None = None


def visible(table: Any, branch_id: UUID, as_of: int | None) -> Any:
    """Rows of the branch as it stood at `as_of` (the current rows when None)."""
    if as_of is None:
        return and_(table.c.branch_id == branch_id, table.c.valid_to.is_(None))
    return and_(
        table.c.branch_id == branch_id,
        table.c.valid_from <= as_of,
        or_(table.c.valid_to.is_(None), table.c.valid_to > as_of),
    )


def as_text(column: Any) -> Any:
    """`column`, uuids cast to text: a page of 50 elements would otherwise parse 150 uuids
    into `UUID` objects (about 0.5 ms) only to print a third of them again."""
    if isinstance(column.type, Uuid):
        return cast(column, Text).label(column.name)
    if isinstance(column.type, ARRAY) and isinstance(column.type.item_type, Uuid):
        return cast(column, ARRAY(Text)).label(column.name)
    return column


def _page_columns(collection: str) -> list[Any]:
    """What a page of `collection` selects: its resources' fields and its sort keys."""
    table = t.CONTENT[collection]
    names = ["id", "valid_from", "created_seq", *t.FIELDS[collection]]
    if collection == "timeline_events":
        names.append("start_ordinal")
    return [as_text(table.c[name]) for name in names]


PAGE_COLUMNS = {collection: _page_columns(collection) for collection in t.CONTENT}


def get_entity(
    conn: Connection, branch_id: UUID, collection: str, entity_id: UUID, as_of: int | None
) -> Row | None:
    table = t.CONTENT[collection]
    row = (
        conn.execute(select(table).where(visible(table, branch_id, as_of), table.c.id == entity_id))
        .mappings()
        .first()
    )
    return resource(collection, row) if row else None


def events_involving(
    conn: Connection, branch_id: UUID, element_id: UUID, until_ordinal: int, as_of: int | None
) -> list[Row]:
    """Timeline events linking the element that start by `until_ordinal`, in in-world order."""
    te = t.timeline_events
    rows = conn.execute(
        select(te.c.id, te.c.title, te.c.timeline_id, te.c.start, te.c.end)
        .where(
            visible(te, branch_id, as_of),
            te.c.element_ids.contains([element_id]),
            te.c.start_ordinal <= until_ordinal,
        )
        .order_by(te.c.start_ordinal, te.c.created_seq)
        .limit(1000)
    ).mappings()
    return [{**dict(r), "id": str(r["id"]), "timeline_id": str(r["timeline_id"])} for r in rows]


def list_entities(
    conn: Connection,
    branch_id: UUID,
    collection: str,
    filters: Filters,
    *,
    limit: int,
    cursor: str | None,
    as_of: int | None,
) -> tuple[list[Row], str | None]:
    """One page in creation order (timeline events: in-world order), keyset-paginated."""
    table = t.CONTENT[collection]
    query = select(*PAGE_COLUMNS[collection]).where(
        visible(table, branch_id, as_of), *_conditions(table, filters)
    )
    if collection == "timeline_events" and filters.from_ordinal is not None:
        query = query.where(_starts_late_enough(branch_id, filters.from_ordinal))
    if collection == "timeline_events":
        order = [table.c.start_ordinal, table.c.created_seq]
    else:
        order = [table.c.created_seq]
    if cursor:
        after = cursors.decode(collection, cursor, len(order))
        query = query.where(_after(order, after))
    rows = conn.execute(query.order_by(*order).limit(limit + 1)).mappings().all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = cursors.encode(collection, [last[c.name] for c in order])
    return [resource(collection, r) for r in page], next_cursor


def _starts_late_enough(branch_id: UUID, from_ordinal: int) -> Any:
    """A lower bound on `start_ordinal` for events that end at or after `from_ordinal`: no
    event of the branch (at any version) spans more than its longest one. Implied by the
    range filter, it lets the in-world indexes start the scan near `from` instead of at the
    beginning of time (the longest span is one probe of `rm_timeline_events_span_idx`)."""
    te = t.timeline_events
    longest = (
        select(func.coalesce(func.max(te.c.end_ordinal - te.c.start_ordinal), 0))
        .where(te.c.branch_id == branch_id)
        .scalar_subquery()
    )
    return te.c.start_ordinal >= literal(from_ordinal) - longest


def _after(order: list[Any], key: list[Any]) -> Any:
    """Keyset predicate: strictly after `key` in the (ascending) `order`."""
    if len(order) == 1:
        return order[0] > key[0]
    return or_(order[0] > key[0], and_(order[0] == key[0], _after(order[1:], key[1:])))


def _conditions(table: Any, f: Filters) -> list[Any]:
    c = table.c
    conditions: list[Any] = []
    if f.kind is not None and "kind" in c:
        conditions.append(c.kind == f.kind)
    if f.tag is not None and "tags" in c:
        conditions.append(c.tags.contains([f.tag]))
    if f.roots_only and "parent_id" in c:
        conditions.append(c.parent_id.is_(None))
    elif f.parent_id is not None and "parent_id" in c:
        conditions.append(c.parent_id == f.parent_id)
    if f.timeline_id is not None and "timeline_id" in c:
        conditions.append(c.timeline_id == f.timeline_id)
    if f.element_id is not None and "element_ids" in c:
        conditions.append(c.element_ids.contains([f.element_id]))
    if f.location_id is not None and "location_id" in c:
        conditions.append(c.location_id == f.location_id)
    if f.metadata is not None and "metadata" in c:
        conditions.append(c.metadata.contains(f.metadata))
    if f.q:
        conditions.append(c.search.op("@@")(func.plainto_tsquery("simple", f.q)))
    if f.from_ordinal is not None and "end_ordinal" in c:
        conditions.append(c.end_ordinal >= f.from_ordinal)
    if f.to_ordinal is not None and "start_ordinal" in c:
        conditions.append(c.start_ordinal <= f.to_ordinal)
    return conditions


def search(
    conn: Connection,
    branch_id: UUID,
    text: str,
    *,
    limit: int,
    cursor: str | None,
    as_of: int | None,
) -> tuple[list[Row], str | None]:
    """Names, titles, summaries and descriptions of all four collections, best match first."""
    query_ts = func.plainto_tsquery("simple", text)
    parts: list[Select[Any]] = []
    for collection, table in t.CONTENT.items():
        title = table.c.title if collection == "timeline_events" else table.c.name
        parts.append(
            select(
                literal(collection).label("collection"),
                as_text(table.c.id),
                title.label("title"),
                table.c.valid_from.label("version"),
                table.c.created_seq,
                func.round(func.ts_rank(table.c.search, query_ts).cast(Numeric), 6).label("rank"),
            ).where(visible(table, branch_id, as_of), table.c.search.op("@@")(query_ts))
        )
    hits = union_all(*parts).subquery()
    query = select(hits)
    if cursor:
        raw_rank, seq, collection = cursors.decode("search", cursor, 3, (str, int, str))
        try:
            rank = Decimal(str(raw_rank))
        except InvalidOperation:
            raise cursors.BadCursor("the cursor does not belong to this list") from None
        query = query.where(
            or_(
                hits.c.rank < rank,
                and_(hits.c.rank == rank, hits.c.created_seq > seq),
                and_(
                    hits.c.rank == rank, hits.c.created_seq == seq, hits.c.collection > collection
                ),
            )
        )
    rows = (
        conn.execute(
            query.order_by(hits.c.rank.desc(), hits.c.created_seq, hits.c.collection).limit(
                limit + 1
            )
        )
        .mappings()
        .all()
    )
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = cursors.encode(
            "search", [str(last["rank"]), last["created_seq"], last["collection"]]
        )
    items = [
        {
            "collection": r["collection"].replace("_", "-"),
            "id": r["id"],
            "title": r["title"],
            "version": r["version"],
            "rank": float(r["rank"]),
        }
        for r in page
    ]
    return items, next_cursor


def resource(collection: str, row: Any) -> Row:
    """A read-table row as the API shows it."""
    out: Row = {"id": str(row["id"]), "version": row["valid_from"]}
    for name in t.FIELDS[collection]:
        value = row[name]
        if isinstance(value, UUID):
            value = str(value)
        elif name == "element_ids":
            value = [str(v) for v in value or []]
        out[name] = value
    return out
