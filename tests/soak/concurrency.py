"""Many clients editing at the same instant, over HTTP.

Same entity, same `If-Match`: exactly one PATCH per round wins (2xx), every other one is
412, and the entity ends with every winning change (no lost update). Different entities of
one branch: every PATCH succeeds (the command layer retries lost races on the stream).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from tests.resilience.load import TIMEOUT, Account, new_world, register
from tests.resilience.report import Result


def _create(account: Account, branch: str, name: str) -> dict[str, Any]:
    response = requests.post(
        f"{branch}/elements",
        json={"kind": "artifact", "name": name},
        headers=account.auth,
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _at_once(count: int, call: Callable[[int], requests.Response]) -> list[requests.Response]:
    """`call(n)` for n in range(count), released together by a barrier."""
    barrier = threading.Barrier(count)

    def run(n: int) -> requests.Response:
        barrier.wait(timeout=30)
        return call(n)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def same_entity(account: Account, branch: str, clients: int, rounds: int, result: Result) -> None:
    element = _create(account, branch, "Contested")
    url = f"{branch}/elements/{element['id']}"
    version, position = int(element["version"]), int(element["position"])
    winners: dict[str, int] = {}
    for number in range(rounds):

        def patch(n: int, version: int = version, number: int = number) -> requests.Response:
            body = {"metadata": {f"round-{number}": n}}
            headers = {**account.auth, "If-Match": f'"{version}"'}
            return requests.patch(url, json=body, headers=headers, timeout=TIMEOUT)

        answers = _at_once(clients, patch)
        statuses = Counter(r.status_code for r in answers)
        result.done["patches"] = result.done.get("patches", 0) + clients
        won = [(n, r) for n, r in enumerate(answers) if r.status_code == 200]
        if statuses != Counter({200: 1, 412: clients - 1}):
            result.problem("broken", f"round {number}: statuses {dict(statuses)}")
        if not won:
            continue
        winner, answer = won[0]
        winners[f"round-{number}"] = winner
        version, position = int(answer.json()["version"]), int(answer.json()["position"])
    final = requests.get(
        f"{url}?min_position={position}", headers=account.auth, timeout=TIMEOUT
    ).json()
    kept = {key: final["metadata"].get(key) for key in winners}
    result.problem("lost", f"winning changes missing: {kept} != {winners}", kept != winners)
    result.done["rounds"] = result.done.get("rounds", 0) + rounds


def different_entities(
    account: Account, branch: str, clients: int, rounds: int, result: Result
) -> None:
    elements = [_create(account, branch, f"Own {n}") for n in range(clients)]
    versions = [int(e["version"]) for e in elements]
    for number in range(rounds):

        def patch(n: int, number: int = number) -> requests.Response:
            body = {"summary": f"edit {number} by {n}"}
            headers = {**account.auth, "If-Match": f'"{versions[n]}"'}
            url = f"{branch}/elements/{elements[n]['id']}"
            return requests.patch(url, json=body, headers=headers, timeout=TIMEOUT)

        answers = _at_once(clients, patch)
        result.done["patches"] = result.done.get("patches", 0) + clients
        for n, answer in enumerate(answers):
            if answer.status_code == 200:
                versions[n] = int(answer.json()["version"])
            else:
                result.problem("broken", f"{answer.status_code} {answer.text[:200]}")
    result.done["rounds"] = result.done.get("rounds", 0) + rounds


def concurrency(api: str, clients: int = 6, rounds: int = 4) -> Result:
    """Both races on a fresh world of a fresh user on the API at `api` (…/api/v1)."""
    account = register(api)
    branch = f"{api}/worlds/{new_world(account, 'Races')}/branches/main"
    result = Result()
    same_entity(account, branch, clients, rounds, result)
    different_entities(account, branch, clients, rounds, result)
    return result
