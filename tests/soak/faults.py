"""PostgreSQL and Redis stopped under a running stack, then started again.

The stack gets a PostgreSQL and a Redis of its own (never the session's). While PostgreSQL
is down every request must get a 503 problem document that names no internals, and nothing
may be half-written; once it is back the same processes must serve again by themselves.
While Redis is down commands and queries must still work (uncached) and suggestions get a
503 problem; once it is back suggestions work again, without a restart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import requests

from commands.application import WorldHistory
from pearl.devservers import start_postgres, start_redis
from pearl.migrate import upgrade
from pearl.processes import ManagedProcess, free_port
from tests.resilience.audit import tag_counts
from tests.resilience.load import TIMEOUT, Account, new_world, register
from tests.resilience.report import Result
from tests.resilience.stack import Stack, wait_for

PROBLEM = "application/problem+json"
# What a problem body must never show: a stack trace, driver or library names, the DSN.
INTERNALS = ("Traceback", 'File "', "sqlalchemy", "psycopg", "OperationalError", "postgresql://")
RECOVERY_TIMEOUT = 60.0
AFTER_RESTART = 12  # requests in a row that must all succeed once PostgreSQL is back


@dataclass
class Servers:
    """The stack's own PostgreSQL and Redis, restartable on the same ports and data."""

    base: Path
    pg_port: int
    redis_port: int
    postgres: ManagedProcess | None = None
    redis: ManagedProcess | None = None

    def start_postgres(self) -> ManagedProcess:
        # Durable like production: a stop that has to escalate to SIGKILL (a slow shutdown on
        # a loaded machine) must not lose commits, or "lost" would measure the test server.
        self.postgres = start_postgres(self.base / "pg", self.pg_port, durable=True)
        return self.postgres

    def start_redis(self) -> ManagedProcess:
        self.redis = start_redis(self.base / "redis", self.redis_port)
        return self.redis

    def stop(self) -> None:
        for server in (self.redis, self.postgres):
            if server is not None:
                server.stop()


@contextlib.contextmanager
def servers(base: Path) -> Iterator[Servers]:
    own = Servers(base, free_port(), free_port())
    try:
        own.start_postgres()
        own.start_redis()
        yield own
    finally:
        own.stop()


class Probe:
    """Requests as one user against the faulty stack, judged into a Result."""

    def __init__(self, stack: Stack, account: Account, world_id: str, result: Result) -> None:
        self.stack = stack
        self.account = account
        self.branch = f"{account.api}/worlds/{world_id}/branches/main"
        self.world_id = world_id
        self.result = result

    def call(self, method: str, url: str, body: Any = None, **headers: str) -> requests.Response:
        self.result.done["cases tried"] = self.result.done.get("cases tried", 0) + 1
        merged = {**self.account.auth, **_h(headers)}
        return requests.request(method, url, json=body, headers=merged, timeout=TIMEOUT)

    def expect(self, response: requests.Response, status: int, what: str) -> bool:
        """Count a problem unless `response` has `status` (a problem document when >= 400)."""
        text = response.text
        leaked = [word for word in INTERNALS if word in text]
        self.result.problem("leaked", f"{what}: the body shows {leaked}", int(bool(leaked)))
        if response.status_code != status:
            self.result.problem("broken", f"{what}: {response.status_code} {text[:300]}")
            return False
        if status >= 400:
            media = response.headers.get("Content-Type", "").split(";")[0]
            body = response.json() if media == PROBLEM else {}
            shaped = all(body.get(k) for k in ("type", "title", "detail"))
            if media != PROBLEM or body.get("status") != status or not shaped:
                self.result.problem("broken", f"{what}: not a {status} problem: {text[:300]}")
                return False
        return True

    def ready(self) -> requests.Response:
        return requests.get(f"{self.stack.url}/readyz", timeout=TIMEOUT)

    def readiness(self, status: int, check: str, says: str) -> None:
        """`/readyz` answers `status` and its `check` entry starts with `says`."""
        self.result.done["cases tried"] = self.result.done.get("cases tried", 0) + 1
        ready = self.ready()
        if ready.status_code != status or not str(ready.json().get(check)).startswith(says):
            self.result.problem("broken", f"readyz: {ready.status_code} {ready.text[:300]}")

    def recovered(self) -> None:
        """Wait (bounded) until /readyz is 200 and the projector has caught up."""
        wait_for(lambda: self.ready().status_code == 200, RECOVERY_TIMEOUT, "readyz to be 200")
        self.stack.wait_projected(RECOVERY_TIMEOUT)

    def create(self, name: str, key: str) -> requests.Response:
        body = {"kind": "artifact", "name": name}
        return self.call("POST", f"{self.branch}/elements", body, Idempotency_Key=key)

    def suggest(self) -> requests.Response:
        body = {"kind": "link-mentions"}
        key = f"suggest-{uuid4()}"
        return self.call("POST", f"{self.branch}/suggestions", body, Idempotency_Key=key)


def _h(headers: dict[str, str]) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in headers.items()}


def postgres_outage(probe: Probe, servers: Servers, element: dict[str, Any]) -> None:
    """Stop PostgreSQL, check every answer is a clean 503, start it, check recovery."""
    result = probe.result
    assert servers.postgres is not None
    servers.postgres.stop()
    result.done["faults injected"] = result.done.get("faults injected", 0) + 1
    name, key = f"during-outage-{uuid4().hex[:8]}", f"key-{uuid4()}"
    element_url = f"{probe.branch}/elements/{element['id']}"
    probe.readiness(503, "database", "down")
    probe.expect(probe.create(name, key), 503, "create with the database down")
    patch = probe.call("PATCH", element_url, {"summary": "never"})
    probe.expect(patch, 503, "patch with the database down")
    probe.expect(probe.call("GET", element_url), 503, "read with the database down")
    probe.expect(probe.call("GET", f"{probe.branch}/elements"), 503, "list, database down")
    probe.expect(probe.suggest(), 503, "suggestion with the database down")

    servers.start_postgres()
    probe.recovered()
    # The very first requests after the restart must succeed: no stale pooled connection.
    created = probe.create(name, key)
    if probe.expect(created, 201, "the refused create, sent again after the restart"):
        if created.headers.get("Idempotent-Replayed"):
            result.problem("broken", "the create refused during the outage had been recorded")
        position = created.json()["position"]
        url = f"{probe.branch}/elements/{created.json()['id']}?min_position={position}"
        read = probe.call("GET", url)
        probe.expect(read, 200, "reading it back (the projector recovered)")
    probe.expect(probe.call("PATCH", element_url, {"summary": "after"}), 200, "patch after")
    for n in range(AFTER_RESTART):  # reach every pooled connection of every API worker
        probe.expect(probe.call("GET", element_url), 200, f"read {n} after the restart")
    counts = _tag_counts(probe.stack.database_url)
    result.problem("lost", f"{name} not recorded", int(counts.get(name, 0) == 0))
    result.problem("duplicated", f"{name} recorded twice", int(counts.get(name, 0) > 1))


def redis_outage(probe: Probe, servers: Servers) -> None:
    """Stop Redis: commands and queries go on, suggestions are a 503; start it again."""
    result = probe.result
    assert servers.redis is not None
    servers.redis.stop()
    result.done["faults injected"] = result.done.get("faults injected", 0) + 1
    probe.readiness(503, "redis", "down")
    name = f"redis-down-{uuid4().hex[:8]}"
    created = probe.create(name, f"key-{uuid4()}")
    if probe.expect(created, 201, "create with Redis down"):
        position = created.json()["position"]
        listed = probe.call("GET", f"{probe.branch}/elements?min_position={position}")
        if probe.expect(listed, 200, "list with Redis down"):
            names = [item["name"] for item in listed.json()["items"]]
            result.problem("lost", f"{name} missing from the list", int(name not in names))
    probe.expect(probe.call("GET", f"{probe.branch}/search?q=outage"), 200, "search, Redis down")
    probe.expect(probe.suggest(), 503, "suggestion with Redis down")

    servers.start_redis()
    probe.recovered()
    asked = probe.suggest()
    if probe.expect(asked, 202, "suggestion after Redis came back"):
        proposal = f"proposals/{asked.json()['id']}?min_position={asked.json()['position']}"
        url = f"{probe.account.api}/worlds/{probe.world_id}/{proposal}"

        def settled() -> str | None:
            answer = requests.get(url, headers=probe.account.auth, timeout=TIMEOUT)
            status = answer.json().get("status") if answer.status_code == 200 else "pending"
            return None if status == "pending" else str(status)

        status = wait_for(settled, RECOVERY_TIMEOUT, "the proposal to settle")
        if status != "ready":
            result.problem("broken", f"the proposal after Redis came back is {status}")


def _tag_counts(database_url: str) -> dict[str, int]:
    history = WorldHistory.on_database(database_url)
    try:
        return dict(tag_counts(history))
    finally:
        history.close()


def faults(base: Path, cycles: int = 1) -> Result:
    """`cycles` times: a PostgreSQL outage, then a Redis outage, on one running stack."""
    result = Result()
    with servers(base) as own:
        assert own.postgres is not None and own.redis is not None
        upgrade(own.postgres.url)
        stack = Stack(own.postgres.url, own.redis.url, base / "stack")
        try:
            stack.start_projector()
            stack.start_worker()
            stack.start_api()
            account = register(stack.api_url)
            world_id = new_world(account, "Faults")
            probe = Probe(stack, account, world_id, result)
            element = probe.create("Steady", f"key-{uuid4()}").json()
            for _ in range(cycles):
                postgres_outage(probe, own, element)
                redis_outage(probe, own)
        finally:
            result.problem("leaked", "processes alive after the stack stopped", stack.stop())
    return result
