"""The Celery application: Redis broker, late acknowledgement, bounded task time.

The worker logs like every other process (`pearl.logs`, role `worker`); a task sent with a
`request_id` keyword argument logs every line, Celery's own included, with that id.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from celery import Celery, signals

from pearl.logs import bind_request_id, configure_logging

TASK_GENERATE = "suggestions.generate_proposal"


def broker_options() -> dict[str, int]:
    """Redis transport options: an unacknowledged task is redelivered after
    `SUGGESTION_VISIBILITY_TIMEOUT` seconds (keep it above the task's time limit), and
    abandoned tasks are looked for often enough to honour a small timeout."""
    visibility = int(os.environ.get("SUGGESTION_VISIBILITY_TIMEOUT", "600"))
    return {
        "visibility_timeout": visibility,
        "unacked_restore_interval": min(10, max(1, visibility // 3)),
        "unacked_restore_throttle": 1,
    }


def time_limits() -> tuple[int | None, int | None]:
    """(soft, hard) seconds per attempt from `SUGGESTION_SOFT_TIME_LIMIT` (default 120) and
    `SUGGESTION_TIME_LIMIT` (default 150); 0 turns a limit off. The soft limit never exceeds
    the hard one: Celery refuses to send (so to retry) a task whose soft limit does."""
    soft = int(os.environ.get("SUGGESTION_SOFT_TIME_LIMIT", "120")) or None
    hard = int(os.environ.get("SUGGESTION_TIME_LIMIT", "150")) or None
    if soft is not None and hard is not None:
        soft = min(soft, hard)
    return soft, hard


@lru_cache(maxsize=4)
def make_celery(redis_url: str | None = None) -> Celery:
    url = redis_url or os.environ.get("REDIS_URL") or "redis://127.0.0.1:63799/0"
    app = Celery("space_pearl", broker=url, include=["suggestions.tasks"])
    soft_limit, hard_limit = time_limits()
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=soft_limit,
        task_time_limit=hard_limit,
        broker_connection_retry_on_startup=True,
        broker_transport_options=broker_options(),
        task_ignore_result=True,
    )
    return app


@signals.setup_logging.connect
def _configure_worker_logging(loglevel: Any = None, **_: Any) -> None:
    """Celery leaves logging alone when this signal has a receiver."""
    configure_logging("worker", loglevel)


@signals.worker_init.connect
def _serve_worker_metrics(**_: Any) -> None:
    """`WORKER_METRICS_PORT`: the worker's own `/metrics` (see suggestions.metrics_server)."""
    from suggestions import metrics_server

    metrics_server.start_from_env()


@signals.task_prerun.connect
def _bind_task_request_id(kwargs: dict[str, Any] | None = None, **_: Any) -> None:
    bind_request_id((kwargs or {}).get("request_id"))


@signals.task_postrun.connect
def _unbind_task_request_id(**_: Any) -> None:
    bind_request_id(None)


app = make_celery()
