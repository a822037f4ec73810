"""The tamper-evident hash chain: `hash = sha256(prev_hash || canonical event)`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
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
    # A UUID's and a datetime's text are plain ASCII (JSON writes them between quotes as
    # they are), and so is an int's; anything else goes through the encoder.
    stream = f'"{stream_id}"' if type(stream_id) is UUID else canonical_json(stream_id)
    at = (
        f'"{timestamp.isoformat()}"'
        if isinstance(timestamp, datetime)
        else canonical_json(timestamp)
    )
    number = str(version) if type(version) is int else canonical_json(version)
    body = (
        f'{{"data":{data_json},"meta":{meta_json},"stream":{stream}'
        f',"timestamp":{at},"type":{_type_json(event_type)},"version":{number}}}'
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


@lru_cache(maxsize=256)
def _type_json(event_type: str) -> str:
    """An event type's name as canonical JSON (a handful of class names: computed once)."""
    return canonical_json(event_type)


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
