"""Aggregates whose every event carries provenance and a link in the hash chain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from commands.chain import GENESIS_HASH, event_digest
from commands.provenance import current_provenance
from commands.validation import check_storable

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
        check_storable(data, "body")
        timestamp = event_class.create_timestamp()
        meta = current_provenance().as_meta()
        digest = event_digest(
            prev_hash,
            stream_id=id,
            version=cls.INITIAL_VERSION,
            event_type=event_class.__name__,
            timestamp=timestamp,
            meta=meta,
            data=data,
        )
        return cls._create(
            event_class,
            id=id,
            timestamp=timestamp,
            meta=meta,
            prev_hash=prev_hash,
            hash=digest,
            **data,
        )

    def trigger_event(self, event_class: type[Any], **data: Any) -> None:
        check_storable(data, "body")  # last line of defence for every recorded event
        timestamp = event_class.create_timestamp()
        meta = current_provenance().as_meta()
        digest = event_digest(
            self.last_hash,
            stream_id=self.id,
            version=self.version + 1,
            event_type=event_class.__name__,
            timestamp=timestamp,
            meta=meta,
            data=data,
        )
        super().trigger_event(
            event_class,
            timestamp=timestamp,
            meta=meta,
            prev_hash=self.last_hash,
            hash=digest,
            **data,
        )
