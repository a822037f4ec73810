"""One attempt at answering a proposal, independent of Celery: load, wait, read, ask, record.

Recording is idempotent: the Proposal aggregate completes or fails only while pending, and a
concurrent second attempt loses the race on the proposal's stream, reloads and records
nothing. So a redelivered task never records anything twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, create_engine

from commands.application import WorldHistory
from commands.errors import NotFound
from commands.messages import CompleteProposal, FailProposal
from commands.provenance import Provenance
from queries import proposals as proposal_queries
from suggestions.context import read_context
from suggestions.providers.base import Provider
from suggestions.worker_settings import WorkerSettings

ACTOR = "ai-worker"
log = logging.getLogger(__name__)


class ReadModelBehind(Exception):
    """The projector has not yet applied the proposal's request; try again later."""


@dataclass
class Resources:
    """The write-side application and a read-side engine, one of each per worker process."""

    history: WorldHistory
    engine: Engine

    @classmethod
    def connect(cls, database_url: str) -> Resources:
        return cls(
            history=WorldHistory.on_database(database_url),
            engine=create_engine(database_url, pool_pre_ping=True, pool_size=2),
        )

    def close(self) -> None:
        self.history.close()
        self.engine.dispose()


def provenance(history: WorldHistory, proposal_id: UUID, correlation_id: str | None) -> Provenance:
    """Events the worker records: by the AI worker, caused by the proposal, and correlated
    with the request that asked for it (the task's header, else the request's own event)."""
    if correlation_id is None:
        correlation_id = requested_correlation(history, proposal_id)
    return Provenance(actor=ACTOR, correlation_id=correlation_id, causation_id=str(proposal_id))


def requested_correlation(history: WorldHistory, proposal_id: UUID) -> str | None:
    """The correlation id the suggestion request was recorded with."""
    requested: Any = next(iter(history.events.get(proposal_id, lte=1)), None)
    found = requested.meta.get("correlation_id") if requested is not None else None
    return str(found) if found else None


def attempt(
    resources: Resources,
    proposal_id: UUID,
    provider: Provider,
    settings: WorkerSettings,
    correlation_id: str | None = None,
) -> str:
    """Answer a pending proposal; return its status afterwards (`missing` if unknown).

    Raises `ReadModelBehind`, `ProviderError`, `ContextError` or a DomainError; the caller
    decides whether to retry or to record the failure.
    """
    history = resources.history
    try:
        proposal = history.proposal(proposal_id)
    except NotFound:
        log.warning("proposal %s does not exist; nothing to do", proposal_id)
        return "missing"
    if proposal.status != "pending":
        log.info("proposal %s is already %s; nothing to do", proposal_id, proposal.status)
        return proposal.status
    world_id = UUID(proposal.world_id)
    wait_for_request(resources.engine, world_id, proposal_id, settings.read_model_wait)
    calendar = history.world(world_id).calendar_rules
    with resources.engine.connect() as conn:
        context = read_context(
            conn,
            world_id,
            proposal.branch,
            dict(proposal.params),
            calendar,
            limit=settings.context_limit,
        )
    answer = provider.suggest(proposal.kind, context, dict(proposal.params))
    outcome = history.handle(
        CompleteProposal(
            proposal_id,
            edits=answer.edits,
            provider=provider.name,
            model=answer.model,
            prompt_version=answer.prompt_version,
            flags=answer.flags,
            usage=answer.usage,
        ),
        provenance(history, proposal_id, correlation_id),
    )
    status = str(outcome.resource["status"])
    log.info("proposal %s is %s (%d edits proposed)", proposal_id, status, len(answer.edits))
    return status


def fail(
    resources: Resources, proposal_id: UUID, reason: str, correlation_id: str | None = None
) -> str:
    """Record that the proposal failed (nothing, if it is no longer pending)."""
    try:
        outcome = resources.history.handle(
            FailProposal(proposal_id, reason),
            provenance(resources.history, proposal_id, correlation_id),
        )
    except NotFound:
        return "missing"
    log.info("proposal %s failed: %s", proposal_id, reason)
    return str(outcome.resource["status"])


def wait_for_request(engine: Engine, world_id: UUID, proposal_id: UUID, timeout: float) -> None:
    """Wait until the read tables hold the proposal, so they hold everything before it too."""
    deadline = time.monotonic() + timeout
    interval = 0.02
    while True:
        with engine.connect() as conn:
            if proposal_queries.proposal(conn, world_id, proposal_id) is not None:
                return
        if time.monotonic() >= deadline:
            raise ReadModelBehind(
                f"the read model did not include the request within {timeout:g} s"
            )
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, 0.5)
