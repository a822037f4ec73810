"""The Proposal aggregate: an AI suggestion from request to review, every step an event."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from commands.chained import ChainedAggregate
from commands.errors import Conflict, InvalidCommand

KINDS = ("link-mentions", "consistency", "expand")


class Proposal(ChainedAggregate):
    """Pending until the worker makes it ready (or failed); then accepted or rejected."""

    if TYPE_CHECKING:  # state is set by events; annotations here would become event fields
        world_id: str
        branch: str
        kind: str
        params: dict[str, Any]
        status: str
        edits: list[dict[str, Any]]

    class ProposalRequested(ChainedAggregate.Created):
        world_id: str
        branch: str
        kind: str
        params: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.world_id = self.world_id
            aggregate.branch = self.branch
            aggregate.kind = self.kind
            aggregate.params = dict(self.params)
            aggregate.status = "pending"
            aggregate.edits = []

    class ProposalReady(ChainedAggregate.Event):
        edits: list[dict[str, Any]]
        dropped: list[dict[str, Any]]
        flags: list[dict[str, Any]]
        provider: str
        model: str | None
        prompt_version: str
        usage: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.status = "ready"
            aggregate.edits = list(self.edits)

    class ProposalFailed(ChainedAggregate.Event):
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.status = "failed"

    class ProposalAccepted(ChainedAggregate.Event):
        indexes: list[int]

        def apply(self, aggregate: Any) -> None:
            aggregate.status = "accepted"

    class ProposalRejected(ChainedAggregate.Event):
        reason: str | None

        def apply(self, aggregate: Any) -> None:
            aggregate.status = "rejected"

    @classmethod
    def request(
        cls, proposal_id: UUID, *, world_id: UUID, branch: str, kind: str, params: dict[str, Any]
    ) -> Proposal:
        if kind not in KINDS:
            raise InvalidCommand.field("kind", f"must be one of {', '.join(KINDS)}")
        return cls._start(
            cls.ProposalRequested,
            id=proposal_id,
            world_id=str(world_id),
            branch=branch,
            kind=kind,
            params=params,
        )

    def complete(
        self,
        *,
        edits: list[dict[str, Any]],
        dropped: list[dict[str, Any]],
        flags: list[dict[str, Any]],
        provider: str,
        model: str | None,
        prompt_version: str,
        usage: dict[str, Any],
    ) -> bool:
        """Record the validated answer; False (and nothing recorded) if already settled."""
        if self.status != "pending":
            return False
        self.trigger_event(
            self.ProposalReady,
            edits=edits,
            dropped=dropped,
            flags=flags,
            provider=provider,
            model=model,
            prompt_version=prompt_version,
            usage=usage,
        )
        return True

    def fail(self, reason: str) -> bool:
        if self.status != "pending":
            return False
        self.trigger_event(self.ProposalFailed, reason=reason[:2000])
        return True

    def accept(self, indexes: list[int]) -> None:
        if self.status != "ready":
            raise Conflict(f"only a ready proposal can be accepted; this one is {self.status}")
        self.trigger_event(self.ProposalAccepted, indexes=indexes)

    def reject(self, reason: str | None) -> None:
        if self.status not in ("pending", "ready"):
            raise Conflict(f"this proposal is already {self.status}")
        self.trigger_event(self.ProposalRejected, reason=reason)
