"""The Celery task that answers a proposal, with retries, backoff and a final failure.

Passing failures (the model endpoint timing out, 429/5xx, the projector lagging, the database
away, a soft time limit) are retried with exponential backoff; after the last retry, or at
once for a final failure (a 4xx, a malformed answer, `expand` without a model, a bad target),
the proposal is marked failed with the reason. The message is acknowledged only after the
task has finished (`acks_late`), so a worker killed mid-task leaves it to be redelivered;
a redelivered or duplicate task finds the proposal settled and records nothing.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from uuid import UUID

import psycopg2
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from eventsourcing import persistence
from sqlalchemy import exc as sql_errors

from commands.errors import ConcurrentWrite, DomainError
from suggestions import generation
from suggestions.celery_app import TASK_GENERATE, app
from suggestions.context import ContextError
from suggestions.generation import ReadModelBehind, Resources
from suggestions.providers import make_provider
from suggestions.providers.base import ProviderError, RetryableProviderError
from suggestions.providers.settings import ProviderSettings, ProviderSettingsError
from suggestions.worker_settings import WorkerSettings

log = logging.getLogger(__name__)

DATABASE_AWAY = (
    sql_errors.OperationalError,
    sql_errors.InterfaceError,
    persistence.OperationalError,
    persistence.InterfaceError,
    psycopg2.OperationalError,
)
PASSING = (
    RetryableProviderError,
    ReadModelBehind,
    ConcurrentWrite,
    SoftTimeLimitExceeded,
    *DATABASE_AWAY,
)
FINAL = (ProviderError, ContextError, ProviderSettingsError, DomainError)

_resources: Resources | None = None
_resources_pid: int | None = None


def resources(settings: WorkerSettings) -> Resources:
    """This process's application and engine, built on first use (after any fork)."""
    global _resources, _resources_pid
    if _resources is None or _resources_pid != os.getpid():
        _resources = Resources.connect(settings.database_url)
        _resources_pid = os.getpid()
    return _resources


class ProposalTask(Task):
    """Fails the proposal when the pool kills an attempt at the hard time limit.

    Celery calls `on_failure` in the worker's main process for a hard time limit and then
    acknowledges the message, so without this the proposal would stay pending forever.
    (Every other outcome is settled inside the task itself.) The main process forks the pool's
    replacement children, so it holds no database connection beyond this call.
    """

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        if not isinstance(exc, TimeLimitExceeded) or not args:
            return
        reason = "the attempt took longer than the task's hard time limit"
        try:
            proposal = UUID(str(args[0]))
            worker = Resources.connect(WorkerSettings.from_env().database_url)
            try:
                generation.fail(worker, proposal, reason)
            finally:
                worker.close()
        except Exception:
            log.exception("could not record that task %s hit its hard time limit", task_id)


@app.task(
    name=TASK_GENERATE, base=ProposalTask, bind=True, acks_late=True, reject_on_worker_lost=True
)
def generate_proposal(self: Any, proposal_id: str) -> str:
    """Answer proposal `proposal_id`; return its status afterwards.

    Its events carry the correlation id the suggestion request was recorded with.
    """
    correlation_id = None
    try:
        proposal = UUID(str(proposal_id))
    except ValueError:
        log.error("task for %r ignored: not a proposal id", proposal_id)
        return "invalid"
    settings = WorkerSettings.from_env()
    worker = resources(settings)
    try:
        provider = make_provider(ProviderSettings.from_env())
        return generation.attempt(worker, proposal, provider, settings, correlation_id)
    except PASSING as error:
        passing: BaseException = error
    except FINAL as error:
        return generation.fail(worker, proposal, describe(error), correlation_id)
    except Exception as error:
        log.exception("proposal %s: unexpected failure", proposal)
        reason = f"the suggestion worker failed unexpectedly ({type(error).__name__})"
        return generation.fail(worker, proposal, reason, correlation_id)
    attempts = self.request.retries + 1
    reason = describe(passing)
    if self.request.retries >= settings.max_retries:
        reason = f"{reason} (gave up after {attempts} attempts)"
        return generation.fail(worker, proposal, reason, correlation_id)
    delay = settings.backoff(self.request.retries, getattr(passing, "retry_after", None))
    log.warning(
        "proposal %s: attempt %d failed (%s); retrying in %g s", proposal, attempts, reason, delay
    )
    raise self.retry(countdown=delay)


def describe(error: BaseException) -> str:
    """A reason for people, never a stack trace or a connection string."""
    if isinstance(error, ProviderError):
        return error.reason
    if isinstance(error, DomainError):
        return error.detail
    if isinstance(error, SoftTimeLimitExceeded):
        return "the attempt took longer than the task's time limit"
    if isinstance(error, DATABASE_AWAY):
        return "the database could not be reached"
    return str(error) or type(error).__name__
