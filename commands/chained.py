"""Aggregates whose every event carries provenance and a link in the hash chain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from commands.chain import GENESIS_HASH, canonical_json, digest_of_parts
from commands.provenance import current_provenance
from commands.validation import check_storable, maybe_unstorable

T = TypeVar("T", bound="ChainedAggregate")


class ChainedAggregate(Aggregate):
    """Stamps `meta`, `prev_hash` and `hash` on each event it triggers."""

    if TYPE_CHECKING:  # state is set by events; annotations here would become event fields
        last_hash: str

    class Event(Aggregate.Event):
        meta: dict[str, Any]
        prev_hash: str
        hash: str

        def mutate(self, aggregate: Any) -> Any:
            mutated = super().mutate(aggregate)
            assert mutated is not None
            mutated.last_hash = self.hash
            return mutated

    @classmethod
    def _start(
        cls: type[T],
        event_class: type[Any],
        *,
        id: UUID,
        prev_hash: str = GENESIS_HASH,
        **data: Any,
    ) -> T:
        stamp = _stamp(event_class, id, cls.INITIAL_VERSION, prev_hash, data)
        return cls._create(event_class, id=id, prev_hash=prev_hash, **stamp, **data)

    def trigger_event(self, event_class: type[Any], **data: Any) -> None:
        """`Aggregate.trigger_event` with the chain's stamp, built in one go (without its
        copies of the arguments and its checks for explicit topics, which we never use)."""
        version = self.version + 1
        prev_hash = self.last_hash
        stamp = _stamp(event_class, self.id, version, prev_hash, data)
        try:
            event = event_class(
                originator_id=self.id,
                originator_version=version,
                prev_hash=prev_hash,
                **stamp,
                **data,
            )
        except TypeError as error:
            raise TypeError(f"Can't construct event {event_class}: {error}") from None
        event.mutate(self)
        self._pending_events.append(event)


def _stamp(
    event_class: type[Any], stream_id: UUID, version: int, prev_hash: str, data: dict[str, Any]
) -> dict[str, Any]:
    """The timestamp, provenance and hash of an event saying `data`, once the data passed
    `check_storable` (the last line of defence for every recorded event)."""
    try:
        data_json = canonical_json(data)  # hashed below; also tells whether to check
    except TypeError:
        check_storable(data, "body")  # what is unstorable is refused as such first
        raise
    if maybe_unstorable(data_json):
        check_storable(data, "body")
    timestamp = event_class.create_timestamp()
    meta = current_provenance().as_meta()
    digest = digest_of_parts(
        prev_hash,
        stream_id=stream_id,
        version=version,
        event_type=event_class.__name__,
        timestamp=timestamp,
        meta_json=canonical_json(meta),
        data_json=data_json,
    )
    return {"timestamp": timestamp, "meta": meta, "hash": digest}
