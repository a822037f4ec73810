"""The tamper-evident hash chain: `hash = sha256(prev_hash || canonical event)`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from commands.json_encoding import compact_encoder

GENESIS_HASH = "0" * 64


def _encode(value: Any) -> str:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot hash a value of type {type(value).__name__}")


_canonical = compact_encoder(sort_keys=True, ensure_ascii=True, default=_encode)


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UUIDs and datetimes as strings."""
    return _canonical(value)


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
    """sha256 of `prev_hash` + the canonical JSON of {stream, version, type, timestamp, meta,
    data} (see `digest_of_parts`)."""
    return digest_of_parts(
        prev_hash,
        stream_id=stream_id,
        version=version,
        event_type=event_type,
        timestamp=timestamp,
        meta_json=canonical_json(meta),
        data_json=canonical_json(data),
    )


def digest_of_parts(
    prev_hash: str,
    *,
    stream_id: UUID,
    version: int,
    event_type: str,
    timestamp: datetime,
    meta_json: str,
    data_json: str,
) -> str:
    """`event_digest` with meta and data already in canonical JSON (computed once and reused).

    The body is assembled as the canonical encoder writes the whole object: keys sorted
    (data, meta, stream, timestamp, type, version), no whitespace.
    """
    body = (
        f'{{"data":{data_json},"meta":{meta_json},"stream":{canonical_json(stream_id)}'
        f',"timestamp":{canonical_json(timestamp)},"type":{canonical_json(event_type)}'
        f',"version":{canonical_json(version)}}}'
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
