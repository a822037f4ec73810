"""The Celery application: Redis broker, late acknowledgement, bounded task time."""

from __future__ import annotations

import os
from functools import lru_cache

from celery import Celery

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


app = make_celery()
