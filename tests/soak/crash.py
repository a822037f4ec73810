"""Writers keep sending commands while API workers or the projector are SIGKILLed.

`crash_api` kills gunicorn workers (the master forks new ones); `crash_projector` kills the
projector and starts a new one. Afterwards every acknowledged command must be in the event
store exactly once, every hash chain must verify and the read tables must equal a rebuild.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.resilience.audit import audit
from tests.resilience.load import Ledger, new_world, register, run_writers
from tests.resilience.report import Result
from tests.resilience.stack import Infra, Stack, on_redis_db

REDIS_DB = 5
WRITERS_DEADLINE = 900.0  # seconds; far above what a run needs


@dataclass(frozen=True)
class Load:
    writers: int = 4
    commands: int = 25  # per writer
    worlds: int = 2
    api_workers: int = 2  # gunicorn workers


def kill_api_workers(stack: Stack, rng: random.Random) -> int:
    """SIGKILL a random number (one to all) of the gunicorn workers, never the master.

    Killing several at once makes sure requests in flight are cut off. Returns how many were
    killed (0 while none is up: they are being replaced).
    """
    pids = stack.api_worker_pids()
    killed = 0
    for pid in rng.sample(pids, rng.randint(1, len(pids))) if pids else []:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        killed += 1
    return killed


def kill_projector(stack: Stack, rng: random.Random) -> int:
    """SIGKILL the projector, leave it dead a moment, start a new one (waits until it follows)."""
    stack.kill_projector()
    time.sleep(rng.uniform(0.0, 0.4))  # the random length of the outage
    stack.start_projector()
    return 1


def served_again(ledger: Ledger, answers: int, timeout: float = 60) -> None:
    """Wait until the writers got `answers` more answers (the stack serves again after the
    last kill), so that the next kill lands amid requests, not amid a restart."""
    start = ledger.counts["commands"]
    deadline = time.monotonic() + timeout
    while ledger.counts["commands"] < start + answers and time.monotonic() < deadline:
        time.sleep(0.02)


def storm(
    infra: Infra,
    name: str,
    kill: Callable[[Stack, random.Random], int],
    *,
    load: Load,
    kills: int,
    seed: int,
) -> Result:
    """Run the writers, kill at random instants while they run (until `kills` processes
    were killed), then audit."""
    rng = random.Random(seed)
    database_url = infra.migrated_database(f"pearl_{name.replace('-', '_')}")
    redis_url = on_redis_db(infra.redis_url, REDIS_DB)
    stack = Stack(database_url, redis_url, infra.logs / name, api_workers=load.api_workers)
    result = Result()
    ledger = Ledger()
    done_kills = 0
    try:
        stack.start_projector()
        stack.start_api()
        account = register(stack.api_url)
        worlds = [new_world(account, f"{name} {n}") for n in range(load.worlds)]
        more = threading.Event()  # the writers go on until every kill is done
        more.set()
        threads = run_writers(account, worlds, load.writers, load.commands, ledger, more)
        deadline = time.monotonic() + WRITERS_DEADLINE
        while time.monotonic() < deadline:
            alive = [t for t in threads if t.is_alive()]
            if not alive:
                break
            if done_kills < kills:
                served_again(ledger, load.writers)
                time.sleep(rng.uniform(0.05, 0.5))  # the random instant of the next kill
                done_kills += kill(stack, rng)
            else:
                more.clear()
                alive[0].join(0.5)
        if any(t.is_alive() for t in threads):
            result.problem("broken", f"writers still running after {WRITERS_DEADLINE:g} s")
        stack.wait_projected(timeout=120)
        found = audit(database_url, ledger.ops, worlds)
    finally:
        leaked = stack.stop()
    counts = ledger.counts
    result.done = {
        "commands": counts["commands"],
        "acknowledged": sum(op.acknowledged for op in ledger.ops),
        "requests": counts["attempts"] + counts["reads"],
        "kills": done_kills,
        "unanswered attempts": counts["no answer"],
        "replayed": counts["replayed"],
        "reads": counts["reads"],
        "chains checked": found["chains checked"],
    }
    result.problem("lost", "acknowledged commands missing from the event store", found["lost"])
    result.problem("duplicated", "tags recorded more than once", found["duplicated"])
    result.problem("broken", "hash chains that do not verify", found["broken chains"])
    result.problem(
        "broken", f"read tables differ: {found['drift sample']}", found["drifted tables"]
    )
    result.problem("broken", "commands never answered", counts["unanswered commands"])
    for note in ledger.problems:
        result.problem("broken", note)
    result.problem("leaked", "processes alive after the stack stopped", leaked)
    return result


def crash_api(infra: Infra, load: Load = Load(), kills: int = 5, seed: int = 1) -> Result:
    return storm(infra, "crash-api", kill_api_workers, load=load, kills=kills, seed=seed)


def crash_projector(infra: Infra, load: Load = Load(), kills: int = 4, seed: int = 2) -> Result:
    return storm(infra, "crash-projector", kill_projector, load=load, kills=kills, seed=seed)
