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

from celery import Task
from celery.exceptions import Retry, SoftTimeLimitExceeded, TimeLimitExceeded
from prometheus_client import Counter

from commands.errors import ConcurrentWrite, DomainError
from pearl.database_errors import DATABASE_AWAY
from pearl.logs import request_id_bound
from suggestions import generation
from suggestions.celery_app import TASK_GENERATE, app
from suggestions.context import ContextError
from suggestions.generation import ReadModelBehind, Resources
from suggestions.providers import make_provider
from suggestions.providers.base import ProviderError, RetryableProviderError
from suggestions.providers.settings import ProviderSettings, ProviderSettingsError
from suggestions.worker_settings import WorkerSettings

log = logging.getLogger(__name__)

PASSING = (
    RetryableProviderError,
    ReadModelBehind,
    ConcurrentWrite,
    SoftTimeLimitExceeded,
    *DATABASE_AWAY,
)
FINAL = (ProviderError, ContextError, ProviderSettingsError, DomainError)

# Outcomes: the proposal's status afterwards (ready, failed, ...), "missing", "invalid",
# "retry" (a passing failure, tried again later), "time_limit" or "error" (task crashed).
TASKS = Counter("pearl_suggestion_tasks", "Suggestion task attempts, by outcome.", ["outcome"])

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
        TASKS.labels("time_limit").inc()
        reason = "the attempt took longer than the task's hard time limit"
        request_id = (kwargs or {}).get("request_id") or None
        with request_id_bound(request_id):
            self._fail_at_hard_limit(task_id, args, reason, request_id)

    def _fail_at_hard_limit(
        self, task_id: str, args: Any, reason: str, request_id: str | None
    ) -> None:
        try:
            proposal = UUID(str(args[0]))
            worker = Resources.connect(WorkerSettings.from_env().database_url)
            try:
                generation.fail(worker, proposal, reason, request_id)
            finally:
                worker.close()
        except Exception:
            log.exception("could not record that task %s hit its hard time limit", task_id)


@app.task(
    name=TASK_GENERATE, base=ProposalTask, bind=True, acks_late=True, reject_on_worker_lost=True
)
def generate_proposal(self: Any, proposal_id: str, request_id: str | None = None) -> str:
    """Answer proposal `proposal_id`; return its status afterwards.

    `request_id` is the id of the HTTP request that asked (absent from older messages): the
    task's log lines carry it (see celery_app) and its events record it as their correlation
    id; without it they carry the correlation id the suggestion request was recorded with.
    """
    try:
        outcome = _generate(self, proposal_id, request_id or None)
    except Retry:
        TASKS.labels("retry").inc()
        raise
    except BaseException:
        TASKS.labels("error").inc()
        raise
    TASKS.labels(outcome).inc()
    return outcome


def _generate(self: Any, proposal_id: str, correlation_id: str | None) -> str:
    """One attempt: the proposal's status afterwards, or `self.retry` for a passing failure."""
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
