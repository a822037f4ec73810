"""How the API hands a recorded proposal to the workers."""

from __future__ import annotations

import redis

from pearl.logs import current_request_id
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


def enqueue(redis_url: str, proposal_id: str, request_id: str | None = None) -> None:
    """Queue the task that answers the proposal (idempotent on the worker side).

    The request id (`request_id`, else the one being handled) travels as the task's
    `request_id` keyword: the worker logs with it and records it as the correlation id.
    Without it the task reads the correlation id from the proposal's own event.
    """
    request_id = request_id or current_request_id()
    kwargs = {"request_id": request_id} if request_id else {}
    try:
        make_celery(redis_url).send_task(
            TASK_GENERATE, args=[proposal_id], kwargs=kwargs, task_id=f"proposal-{proposal_id}"
        )
    except Exception as error:  # kombu raises many kinds when the broker is down
        raise QueueUnavailable(str(error)) from error
