"""Writers that keep sending commands and retry a command that got no answer.

Each writer is one client thread. A create carries a unique `Idempotency-Key` and a unique
name; a retry sends the same request with the same key, so the server must answer it with
the first response and record nothing new. A PATCH carries `If-Match` on an entity only that
writer edits: a retry answered 412 means the earlier, unanswered attempt was applied.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import requests

TIMEOUT = 20
PASSWORD = "correct horse battery staple"
# Answers after which the same request is sent again: nothing was recorded, or we cannot tell.
RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass
class Account:
    api: str
    user_id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def register(api: str) -> Account:
    """A new user, logged in."""
    email = f"soak-{uuid4().hex[:12]}@example.com"
    body = {"email": email, "password": PASSWORD, "display_name": "Soak"}
    created = requests.post(f"{api}/auth/register", json=body, timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    login = {"email": email, "password": PASSWORD}
    tokens = requests.post(f"{api}/auth/token", json=login, timeout=TIMEOUT)
    assert tokens.status_code == 200, tokens.text
    return Account(api, created.json()["id"], tokens.json()["access_token"])


def new_world(account: Account, name: str = "Soak world") -> str:
    response = requests.post(
        f"{account.api}/worlds", json={"name": name}, headers=account.auth, timeout=TIMEOUT
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@dataclass
class Answer:
    """The answer a command finally got (None: none within the attempts) and how it went."""

    response: requests.Response | None
    attempts: int
    unanswered: int  # attempts that got no HTTP answer at all (connection reset, timeout)


def is_concurrent_write(response: requests.Response) -> bool:
    return response.status_code == 409 and "concurrent-write" in response.text


def send(
    method: str,
    url: str,
    headers: dict[str, str],
    body: Any = None,
    attempts: int = 40,
) -> Answer:
    """Send until an answer that is not a 'try again' comes, at most `attempts` times."""
    unanswered = 0
    for attempt in range(1, attempts + 1):
        try:
            response = requests.request(method, url, json=body, headers=headers, timeout=TIMEOUT)
        except requests.RequestException:
            unanswered += 1
        else:
            retry = response.status_code in RETRY_STATUSES or is_concurrent_write(response)
            if not retry:
                return Answer(response, attempt, unanswered)
        time.sleep(min(1.0, 0.05 * attempt))
    return Answer(None, attempts, unanswered)


@dataclass
class Op:
    """One command a writer sent: its unique tag, and whether the server acknowledged it."""

    kind: str  # "create" or "patch"
    tag: str
    entity_id: str | None = None
    acknowledged: bool = False


@dataclass
class Ledger:
    """What all writers sent and saw (thread-safe)."""

    ops: list[Op] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: Op, answer: Answer, **more: int) -> None:
        with self.lock:
            self.ops.append(op)
            self.counts["commands"] += 1
            self.counts["attempts"] += answer.attempts
            self.counts["no answer"] += answer.unanswered
            self.counts["unanswered commands"] += answer.response is None
            self.counts.update(more)

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


class Writer:
    """One client: creates elements and patches its own, reading its writes back now and then."""

    def __init__(self, account: Account, world_id: str, number: int, ledger: Ledger) -> None:
        self.account = account
        self.branch = f"{account.api}/worlds/{world_id}/branches/main"
        self.number = number
        self.ledger = ledger
        self.rng = random.Random(number)
        self.versions: dict[str, int] = {}  # entity id -> version this writer last saw

    def run(self, commands: int, more: threading.Event | None = None) -> None:
        """Send `commands` commands, and more (up to 50 times as many) while `more` is set."""
        for seq in range(commands * 50):
            if seq >= commands and (more is None or not more.is_set()):
                return
            tag = f"w{self.number}-{seq}-{uuid4().hex[:8]}"
            if not self.versions or self.rng.random() < 0.5:
                self.create(tag)
            else:
                self.patch(tag, self.rng.choice(sorted(self.versions)))

    def create(self, tag: str) -> None:
        headers = {**self.account.auth, "Idempotency-Key": f"key-{tag}"}
        body = {"kind": "artifact", "name": tag, "metadata": {"by": self.number}}
        answer = send("POST", f"{self.branch}/elements", headers, body)
        op = Op("create", tag)
        response = answer.response
        replayed = response is not None and response.headers.get("Idempotent-Replayed") == "true"
        if response is not None and response.status_code == 201:
            op.entity_id = response.json()["id"]
            op.acknowledged = True
            self.versions[str(op.entity_id)] = int(response.json()["version"])
            self.read_back(str(op.entity_id), response)
        elif response is not None:
            self.ledger.problem(f"create {tag}: {response.status_code} {response.text[:200]}")
        self.ledger.record(op, answer, replayed=int(replayed))

    def patch(self, tag: str, entity_id: str) -> None:
        version = self.versions[entity_id]
        headers = {**self.account.auth, "If-Match": f'"{version}"'}
        body = {"metadata": {tag: self.number}}
        answer = send("PATCH", f"{self.branch}/elements/{entity_id}", headers, body)
        op = Op("patch", tag, entity_id)
        response = answer.response
        if response is not None and response.status_code == 200:
            op.acknowledged = True
            self.versions[entity_id] = int(response.json()["version"])
            self.read_back(entity_id, response)
        elif response is not None and response.status_code == 412 and answer.attempts > 1:
            # Only this writer edits the entity: an earlier attempt was applied.
            op.acknowledged = True
            self.versions[entity_id] = int(response.json()["current_version"])
        elif response is not None:
            self.ledger.problem(f"patch {tag}: {response.status_code} {response.text[:200]}")
        self.ledger.record(op, answer)

    def read_back(self, entity_id: str, written: requests.Response) -> None:
        """Now and then, read the write back with `min_position`: it must be there."""
        if self.rng.random() > 0.25:
            return
        position = written.json()["position"]
        answer = send(
            "GET",
            f"{self.branch}/elements/{entity_id}?min_position={position}",
            self.account.auth,
        )
        response = answer.response
        with self.ledger.lock:
            self.ledger.counts["reads"] += 1
        if response is None or response.status_code != 200:
            status = None if response is None else response.status_code
            self.ledger.problem(f"read of {entity_id} at {position}: {status}")
        elif response.json()["version"] < written.json()["version"]:
            self.ledger.problem(f"read of {entity_id} at {position} missed the write")


def run_writers(
    account: Account,
    world_ids: list[str],
    writers: int,
    commands: int,
    ledger: Ledger,
    more: threading.Event | None = None,
) -> list[threading.Thread]:
    """Start `writers` client threads (spread over the worlds); the caller joins them.

    Each sends `commands` commands, and goes on while `more` is set.
    """
    threads = [
        threading.Thread(
            target=Writer(account, world_ids[n % len(world_ids)], n, ledger).run,
            args=(commands, more),
            name=f"writer-{n}",
            daemon=True,
        )
        for n in range(writers)
    ]
    for thread in threads:
        thread.start()
    return threads
