"""The suggestion worker SIGKILLed while a task waits on the model: still answered once.

The model is a fake OpenAI-compatible server on 127.0.0.1 that holds the first request of
each round until the kill. Rounds alternate between killing the pool process that runs the
task (the worker's main process requeues it: `reject_on_worker_lost`) and killing the whole
worker (Redis redelivers the unacknowledged task after the visibility timeout to a worker
started anew: `acks_late`). Either way the proposal must end `ready` with exactly one answer.
"""

from __future__ import annotations

import signal
import threading
from typing import Any
from uuid import UUID, uuid4

import psutil
import requests

from commands.application import WorldHistory
from tests.integration.fake_openai import FakeOpenAI, Reply
from tests.resilience.load import TIMEOUT, Account, new_world, register
from tests.resilience.report import Result
from tests.resilience.stack import Infra, Stack, kill_group, on_redis_db, wait_for

REDIS_DB = 6


def worker_env(fake: FakeOpenAI) -> dict[str, str]:
    return {
        "AI_PROVIDER": "openai",
        "AI_BASE_URL": fake.base_url,
        "AI_MODEL": "fake-model-1",
        "AI_API_KEY": "sk-fake-key-for-tests",
        "AI_TIMEOUT": "30",
        "SUGGESTION_VISIBILITY_TIMEOUT": "2",
    }


def seed_world(account: Account) -> str:
    """A world whose timeline event names an element it does not link."""
    world_id = new_world(account, "Worker crash")
    branch = f"{account.api}/worlds/{world_id}/branches/main"

    def create(collection: str, body: dict[str, Any]) -> str:
        response = requests.post(
            f"{branch}/{collection}", json=body, headers=account.auth, timeout=TIMEOUT
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    create("elements", {"kind": "character", "name": "Ada Quill"})
    timeline = create("timelines", {"name": "Reigns"})
    event = {"timeline_id": timeline, "title": "Ada Quill is crowned", "start": {"year": 412}}
    create("timeline-events", event)
    return world_id


def kill_pool_process(stack: Stack) -> bool:
    """SIGKILL the pool process(es) of the worker, leaving its main process alive."""
    assert stack.worker is not None
    children = psutil.Process(stack.worker.pid).children()
    for child in children:
        child.send_signal(signal.SIGKILL)
    return bool(children)


def proposal_status(account: Account, world_id: str, proposal_id: str) -> str:
    """The proposal's status once it is settled (not pending), else ""."""
    response = requests.get(
        f"{account.api}/worlds/{world_id}/proposals/{proposal_id}",
        headers=account.auth,
        timeout=TIMEOUT,
    )
    if response.status_code != 200:
        return ""
    status = str(response.json()["status"])
    return "" if status == "pending" else status


def settle(account: Account, world_id: str, proposal_id: str, timeout: float = 120) -> str:
    """The proposal's status once it has settled (bounded wait)."""
    return wait_for(
        lambda: proposal_status(account, world_id, proposal_id),
        timeout,
        f"proposal {proposal_id} to settle",
    )


def crash_worker(infra: Infra, rounds: int = 2) -> Result:
    fake = FakeOpenAI()
    database_url = infra.migrated_database("pearl_crash_worker")
    redis_url = on_redis_db(infra.redis_url, REDIS_DB)
    stack = Stack(database_url, redis_url, infra.logs / "crash-worker", env=worker_env(fake))
    result = Result()
    kills = ready = 0
    answers: list[list[str]] = []
    asked = 0
    release = threading.Event()
    try:
        stack.start_projector()
        stack.start_worker()
        stack.start_api()
        account = register(stack.api_url)
        world_id = seed_world(account)
        for number in range(rounds):
            release = threading.Event()
            fake.script(Reply(200, b"{}", hang=release))  # then the default: an empty answer
            response = requests.post(
                f"{account.api}/worlds/{world_id}/branches/main/suggestions",
                json={"kind": "link-mentions"},
                headers={**account.auth, "Idempotency-Key": f"suggest-{uuid4()}"},
                timeout=TIMEOUT,
            )
            assert response.status_code == 202, response.text
            proposal_id = str(response.json()["id"])
            wait_for(lambda: fake.requests, 60, "the worker to ask the model")
            if number % 2 == 0:
                kills += kill_pool_process(stack)
                release.set()
            else:
                assert stack.worker is not None
                kill_group(stack.worker)
                stack.worker.stop()
                kills += 1
                release.set()
                stack.start_worker()
            status = settle(account, world_id, proposal_id)
            ready += status == "ready"
            asked += len(fake.requests)
            if len(fake.requests) < 2:  # the killed attempt, then the one that answered
                result.problem("broken", f"round {number}: the model was asked only once")
            if status != "ready":
                result.problem("broken", f"proposal {proposal_id} ended {status}")
            answers.append(event_types(database_url, proposal_id))
    finally:
        release.set()
        leaked = stack.stop()
        fake.close()
    for types in answers:
        settled = [t for t in types if t in ("ProposalReady", "ProposalFailed")]
        result.problem("lost", f"no answer recorded: {types}", int(not settled))
        result.problem("duplicated", f"answers recorded: {types}", max(0, len(settled) - 1))
    result.done = {
        "suggestions": rounds,
        "kills": kills,
        "model requests": asked,
        "proposals ready": ready,
    }
    result.problem("leaked", "processes alive after the stack stopped", leaked)
    return result


def event_types(database_url: str, proposal_id: str) -> list[str]:
    """The proposal's stored events, by type."""
    history = WorldHistory.on_database(database_url)
    try:
        return [type(e).__name__ for e in history.events.get(UUID(proposal_id))]
    finally:
        history.close()
