"""Stored events for the import's hot loop: the mapper's bytes, without its per-call cost.

`Mapper.to_stored_event` encodes each state with `JSONTranscoder.encode`, which builds a new
C encoder on every call (`json.JSONEncoder.iterencode`); for a small event that costs about
as much as the encoding itself. `state_encoder` compiles the transcoder's encoder once (same
options, same `default` for typed values) and `stored_events` makes the mapper's stored
events with it: the same bytes (tests/unit/test_archive_codec.py holds it to that).

Anything but an eventsourcing `JSONTranscoder` configured as that library configures it, and
any mapper that compresses or encrypts, is left alone: the functions are then the
transcoder's and the mapper's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from commands.json_encoding import compact_encoder

Encode = Callable[[dict[str, Any]], bytes]
ToStored = Callable[[Any], StoredEvent]


def _plain_transcoder(transcoder: Transcoder) -> JSONTranscoder | None:
    """The transcoder, if it is a stock JSONTranscoder whose JSON `state_encoder` reproduces."""
    if type(transcoder) is not JSONTranscoder:
        return None
    encoder = transcoder.encoder
    stock = (
        type(encoder) is json.JSONEncoder
        and encoder.item_separator == ","
        and encoder.key_separator == ":"
        and not encoder.ensure_ascii
        and not encoder.sort_keys
        and not encoder.skipkeys
        and encoder.allow_nan
        and encoder.indent is None
    )
    return transcoder if stock else None


def state_encoder(transcoder: Transcoder) -> Encode:
    """`transcoder.encode`, compiled once."""
    stock = _plain_transcoder(transcoder)
    if stock is None:
        return transcoder.encode
    encode = compact_encoder(sort_keys=False, ensure_ascii=False, default=stock._encode_obj)

    def encode_state(state: dict[str, Any]) -> bytes:
        return encode(state).encode("utf8")

    return encode_state


def stored_events(mapper: Mapper[Any]) -> ToStored:
    """`mapper.to_stored_event`, with the state encoded by `state_encoder` when the mapper
    neither compresses nor encrypts (otherwise the mapper's own method)."""
    if mapper.compressor is not None or mapper.cipher is not None:
        return mapper.to_stored_event
    encode = state_encoder(mapper.transcoder)

    def to_stored_event(event: Any) -> StoredEvent:
        state = dict(vars(event))  # what Mapper.to_stored_event does, step by step
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(event)),
            state=encode(state),
        )

    return to_stored_event
