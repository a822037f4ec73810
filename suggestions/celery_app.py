"""The Celery application: Redis broker, late acknowledgement, bounded task time."""

from __future__ import annotations

import os
from functools import lru_cache

from celery import Celery

TASK_GENERATE = "suggestions.generate_proposal"


@lru_cache(maxsize=4)
def make_celery(redis_url: str | None = None) -> Celery:
    url = redis_url or os.environ.get("REDIS_URL") or "redis://127.0.0.1:63799/0"
    app = Celery("space_pearl", broker=url, include=["suggestions.tasks"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=int(os.environ.get("SUGGESTION_SOFT_TIME_LIMIT", "120")),
        task_time_limit=int(os.environ.get("SUGGESTION_TIME_LIMIT", "150")),
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 600},
        task_ignore_result=True,
    )
    return app


app = make_celery()
