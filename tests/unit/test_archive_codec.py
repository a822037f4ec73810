"""The import's stored events are the mapper's own, byte for byte (commands.archive_codec)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import JSONTranscoder, Mapper, Transcoder

from commands import branch_events as ev
from commands.application import WorldHistory
from commands.archive_codec import state_encoder, stored_events
from commands.world import branch_id
from tests.archive_worlds import BRANCHES, build_world


def recorded_events(app: WorldHistory) -> list[Any]:
    """Every event of a world with every kind of event, as domain events."""
    built = build_world(app)
    ids = [built.world_id] + [branch_id(built.world_id, name) for name in BRANCHES]
    return [
        app.mapper.to_domain_event(stored)
        for sid in ids
        for stored in app.recorder.select_events(sid)
    ]


def event_saying(cls: type, **state: Any) -> Any:
    """An event object of `cls` holding exactly `state` (as the importer makes them)."""
    event: Any = object.__new__(cls)
    object.__setattr__(event, "__dict__", state)
    return event


class TestStoredEvents:
    def test_every_kind_of_event_is_stored_as_the_mapper_stores_it(self) -> None:
        app = WorldHistory()
        events = recorded_events(app)
        to_stored = stored_events(app.mapper)
        assert len({type(event) for event in events}) > 15
        assert [to_stored(e) for e in events] == [app.mapper.to_stored_event(e) for e in events]

    def test_text_typed_values_and_key_order_are_kept_exactly(self) -> None:
        app = WorldHistory()
        event = event_saying(
            ev.ElementAdded,
            originator_id=uuid4(),
            originator_version=7,
            zeta='ünïcødé ✓ \u2028 \x00 \t " \\ /',
            alpha={"nested": [1, 2.5, -0.0, 1e300, True, None], "uuid": uuid4()},
            timestamp=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
            when=datetime(2026, 1, 2),
            amount=Decimal("12.3400"),
        )
        stored = stored_events(app.mapper)(event)
        assert stored == app.mapper.to_stored_event(event)
        assert stored.state.startswith(b'{"zeta":"\xc3\xbcn')  # insertion order, no escapes

    def test_a_class_version_is_stored_as_the_mapper_stores_it(self) -> None:
        class Versioned(ev.ElementAdded):
            class_version = 3

        app = WorldHistory()
        event = event_saying(Versioned, originator_id=uuid4(), originator_version=1, name="x")
        stored = stored_events(app.mapper)(event)
        assert stored == app.mapper.to_stored_event(event)
        assert b'"class_version":3' in stored.state

    def test_a_compressing_mapper_is_used_as_it_is(self) -> None:
        app = WorldHistory()
        mapper: Mapper[UUID] = Mapper(transcoder=app.mapper.transcoder, compressor=ZlibCompressor())
        event = recorded_events(app)[3]
        to_stored = stored_events(mapper)
        assert to_stored == mapper.to_stored_event
        assert to_stored(event) == mapper.to_stored_event(event)

    def test_another_transcoder_encodes_with_its_own_method(self) -> None:
        class Sorted(JSONTranscoder):
            pass

        other: Transcoder = Sorted()
        assert state_encoder(other) == other.encode
        changed = JSONTranscoder()
        changed.encoder.ensure_ascii = True
        assert state_encoder(changed) == changed.encode
