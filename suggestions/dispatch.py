"""How the API hands a recorded proposal to the workers."""

from __future__ import annotations

import redis

from suggestions.celery_app import TASK_GENERATE, make_celery


class QueueUnavailable(Exception):
    """The broker cannot take the task right now."""


def broker_reachable(redis_url: str | None) -> bool:
    if not redis_url:
        return False
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return bool(client.ping())
    except redis.RedisError:
        return False


def enqueue(redis_url: str, proposal_id: str) -> None:
    """Queue the task that answers the proposal (idempotent on the worker side).

    The request's correlation id travels in the proposal's own event, where the task reads it.
    """
    try:
        make_celery(redis_url).send_task(
            TASK_GENERATE, args=[proposal_id], task_id=f"proposal-{proposal_id}"
        )
    except Exception as error:  # kombu raises many kinds when the broker is down
        raise QueueUnavailable(str(error)) from error
