"""`Application.save` without its generic path, for applications that save aggregates.

The generic path checks every object against runtime Protocols (`isinstance` on a
`typing.Protocol` inspects the class each time), which cost more than the rest of a save;
`EventStore.put` maps each event with a JSON encoder that it builds anew for every event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import JSONTranscoder, Notification, Recording, StoredEvent
from eventsourcing.utils import get_topic

from commands.json_encoding import compact_encoder

_HOOKS = ("_record", "_take_snapshots", "_notify", "notify")


class DirectSave(Application[UUID]):
    """Records aggregates' pending events as `Application.save` does: same events, same
    stored bytes, same `Recording`s; events given directly, an aggregate cache, snapshots or
    overridden hooks take the generic path."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self._direct_save = (
            self.snapshots is None
            and not self.repository.cache
            and all(getattr(type(self), h) is getattr(Application, h) for h in _HOOKS)
        )
        self._to_stored: Callable[[Any], StoredEvent] = stored_event_maker(self.mapper)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        if not self._direct_save or not all(
            obj is None or isinstance(obj, BaseAggregate) for obj in objs
        ):
            return super().save(*objs, **kwargs)
        events: list[Any] = []
        for obj in objs:
            if obj is not None:
                events += obj.collect_events()
        stored = list(map(self._to_stored, events))
        ids = self.recorder.insert_events(stored, tracking=None, **kwargs)
        if not ids:
            return []
        return [
            Recording(
                event,
                Notification(
                    originator_id=s.originator_id,
                    originator_version=s.originator_version,
                    topic=s.topic,
                    state=s.state,
                    id=nid,
                ),
            )
            for event, s, nid in zip(events, stored, ids, strict=True)
        ]


def stored_event_maker(mapper: Any) -> Callable[[Any], StoredEvent]:
    """`mapper.to_stored_event`, or the same mapping with the transcoder's JSON encoder
    built once (byte for byte the same output) when the mapper is a plain JSON one."""
    transcoder = mapper.transcoder
    if mapper.compressor or mapper.cipher or type(transcoder) is not JSONTranscoder:
        return mapper.to_stored_event  # type: ignore[no-any-return]
    encode = compact_encoder(
        sort_keys=False,
        ensure_ascii=False,
        default=transcoder._encode_obj,
    )

    def to_stored_event(event: Any) -> StoredEvent:
        cls = type(event)
        state = dict(vars(event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(cls),
            state=encode(state).encode("utf8"),
        )

    return to_stored_event
