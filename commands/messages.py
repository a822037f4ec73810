"""Commands: plain data naming what a user asks the write side to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class CreateWorld:
    world_id: UUID
    owner_id: str
    name: str
    description: str | None = None
    calendar: dict[str, Any] | None = None


@dataclass(frozen=True)
class UpdateWorld:
    """Rename, describe or define the calendar: only the fields present in `changes`."""

    world_id: UUID
    changes: dict[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True)
class SetMemberRole:
    world_id: UUID
    user_id: str
    role: str


@dataclass(frozen=True)
class RemoveMember:
    world_id: UUID
    user_id: str


@dataclass(frozen=True)
class AddEntity:
    """Add a location, element, timeline or timeline event to a branch."""

    world_id: UUID
    branch: str
    collection: str
    entity_id: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UpdateEntity:
    world_id: UUID
    branch: str
    collection: str
    entity_id: str
    changes: dict[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True)
class RemoveEntity:
    world_id: UUID
    branch: str
    collection: str
    entity_id: str
    expected_version: int | None = None
    cascade: bool = False


@dataclass(frozen=True)
class ForkBranch:
    """Start branch `name` as `source` stood at `at_version` (its head when None)."""

    world_id: UUID
    name: str
    source: str
    at_version: int | None = None


@dataclass(frozen=True)
class MergeBranch:
    """Apply `source`'s changes since the common ancestor to `target` (or only plan them)."""

    world_id: UUID
    target: str
    source: str
    dry_run: bool = False


@dataclass(frozen=True)
class RevertBranch:
    """Append the events that bring `branch` back to its state at `to_version`."""

    world_id: UUID
    branch: str
    to_version: int


@dataclass(frozen=True)
class RequestSuggestion:
    world_id: UUID
    branch: str
    proposal_id: UUID
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompleteProposal:
    """The worker's answer: raw edits (validated by the handler), flags and provenance."""

    proposal_id: UUID
    edits: list[Any]
    provider: str
    model: str | None
    prompt_version: str
    flags: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FailProposal:
    proposal_id: UUID
    reason: str


@dataclass(frozen=True)
class AcceptProposal:
    """Accept all edits (`indexes` None) or the chosen ones."""

    world_id: UUID
    proposal_id: UUID
    indexes: list[int] | None = None


@dataclass(frozen=True)
class RejectProposal:
    world_id: UUID
    proposal_id: UUID
    reason: str | None = None


Command = (
    CreateWorld
    | UpdateWorld
    | SetMemberRole
    | RemoveMember
    | AddEntity
    | UpdateEntity
    | RemoveEntity
    | ForkBranch
    | MergeBranch
    | RevertBranch
    | RequestSuggestion
    | CompleteProposal
    | FailProposal
    | AcceptProposal
    | RejectProposal
)
