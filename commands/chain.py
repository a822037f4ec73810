"""The tamper-evident hash chain: `hash = sha256(prev_hash || canonical event)`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UUIDs and datetimes as strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_encode)


def _encode(value: Any) -> str:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot hash a value of type {type(value).__name__}")


def event_digest(
    prev_hash: str,
    *,
    stream_id: UUID,
    version: int,
    event_type: str,
    timestamp: datetime,
    meta: dict[str, Any],
    data: dict[str, Any],
) -> str:
    body = canonical_json(
        {
            "stream": stream_id,
            "version": version,
            "type": event_type,
            "timestamp": timestamp,
            "meta": meta,
            "data": data,
        }
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


CHAIN_FIELDS = frozenset(
    {
        "originator_id",
        "originator_version",
        "timestamp",
        "meta",
        "prev_hash",
        "hash",
        "originator_topic",
    }
)


def event_data(event: Any) -> dict[str, Any]:
    """The domain fields of an event: what it says, without envelope or chain."""
    return {k: v for k, v in vars(event).items() if k not in CHAIN_FIELDS}


def digest_of(event: Any) -> str:
    """Recompute the hash a stored event should carry."""
    return event_digest(
        event.prev_hash,
        stream_id=event.originator_id,
        version=event.originator_version,
        event_type=type(event).__name__,
        timestamp=event.timestamp,
        meta=event.meta,
        data=event_data(event),
    )


def first_broken_link(events: Iterable[Any], expected_prev: str | None = None) -> Any | None:
    """The first event whose hash or link to its predecessor does not verify, else None."""
    prev = expected_prev
    for event in events:
        if prev is not None and event.prev_hash != prev:
            return event
        if digest_of(event) != event.hash:
            return event
        prev = event.hash
    return None
