"""The one interface every suggestion provider implements, and the errors it may raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from suggestions.context import BranchContext


@dataclass(frozen=True)
class ProviderAnswer:
    """What a provider proposes: raw edits (validated later by the write side) and flags.

    `edits` are untrusted until `CompleteProposal` has checked each one against the branch;
    `flags` are `{"kind", "entity", "message"}` findings that have no obvious fix.
    """

    edits: list[Any]
    flags: list[dict[str, Any]]
    model: str | None
    prompt_version: str
    usage: dict[str, Any] = field(default_factory=dict)


class ProviderError(Exception):
    """The provider could not answer. `retryable` says whether asking again may help."""

    retryable = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryableProviderError(ProviderError):
    """A passing failure: a timeout, a refused connection, HTTP 429 or 5xx."""

    retryable = True
    retry_after: float | None = None  # seconds the provider asked us to wait, if it said


class NeedsLanguageModel(ProviderError):
    """The offline provider was asked for something only a language model can do."""


class Provider(Protocol):
    """Answers one suggestion request about one branch."""

    name: str

    def suggest(self, kind: str, context: BranchContext, params: dict[str, Any]) -> ProviderAnswer:
        """Propose edits and flags for `kind`; raise `ProviderError` when it cannot."""
        ...
