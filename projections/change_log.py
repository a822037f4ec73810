"""The change log (`rm_changes`): one row per stored event, written as COPY text lines.

A line is built straight from the event (no row dict), with the field encoders of
`projections.bulk_copy`; the columns are those of `tables.changes`, in their order.
"""

from __future__ import annotations

from typing import Any

from commands.chain import CHAIN_FIELDS
from projections import tables as t
from projections.bulk_copy import NULL, json_text, plain, text

COLUMNS = [c.name for c in t.changes.columns]

# What `change_line` takes: position, event, world id, branch id, version, entity id.
Change = tuple[int, Any, str, str | None, int, str | None]

# event class -> (its `type` field, its `collection` field)
_CLASS_FIELDS: dict[type, tuple[str, str]] = {}


def _class_fields(cls: type) -> tuple[str, str]:
    found = _CLASS_FIELDS.get(cls)
    if found is None:
        found = text(cls.__name__), text(getattr(cls, "collection", None) or None)
        _CLASS_FIELDS[cls] = found
    return found


def change_line(
    position: int,
    event: Any,
    world_id: str,
    branch_id: str | None,
    version: int,
    entity_id: str | None,
) -> str:
    """The COPY line of `event`'s change row (ids given as canonical text)."""
    type_field, collection_field = _class_fields(type(event))
    meta = event.meta
    state = vars(event)
    return "\t".join(
        (
            str(position),
            world_id,
            NULL if branch_id is None else branch_id,
            str(event.originator_version),
            str(version),
            type_field,
            collection_field,
            NULL if entity_id is None else entity_id,
            text(meta.get("actor") or "system"),
            plain(event.timestamp),
            text(meta.get("command_id")),
            text(meta.get("correlation_id")),
            text(meta.get("causation_id")),
            text(event.hash),
            text(event.prev_hash),
            json_text({k: v for k, v in state.items() if k not in CHAIN_FIELDS}),
        )
    )
