"""Run the same job in N threads or N processes for a fixed time; count what they did.

A job is a module-level function `job(arg, ready, stop) -> count`: it sets itself up, calls
`ready()` (all start together, only then does the clock run), works until `stop.is_set()`
and returns how many operations it completed.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

START_TIMEOUT = 120.0


class Stop(Protocol):
    def is_set(self) -> bool: ...


Job = Callable[[Any, Callable[[], None], Stop], int]


def _run_one(job: Job, arg: Any, barrier: Any, stop: Stop, results: Any) -> None:
    try:
        count = job(arg, lambda: barrier.wait(START_TIMEOUT), stop)
    except BaseException as error:
        barrier.abort()
        results.put(("error", repr(error)))
        raise
    results.put(("ok", count))


def rate(job: Job, args: Sequence[Any], seconds: float, mode: str = "threads") -> float:
    """Operations per second of `len(args)` concurrent jobs (`mode`: threads or processes)."""
    workers: list[Any]
    if mode == "threads":
        barrier: Any = threading.Barrier(len(args) + 1)
        stop: Any = threading.Event()
        results: Any = queue_module.Queue()
        workers = [
            threading.Thread(target=_run_one, args=(job, arg, barrier, stop, results))
            for arg in args
        ]
    else:
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(len(args) + 1)
        stop = ctx.Event()
        results = ctx.Queue()
        workers = [
            ctx.Process(target=_run_one, args=(job, arg, barrier, stop, results)) for arg in args
        ]
    for worker in workers:
        worker.start()
    try:
        barrier.wait(START_TIMEOUT)
        began = time.perf_counter()
        time.sleep(seconds)
    finally:
        stop.set()
    outcomes = [results.get(timeout=START_TIMEOUT) for _ in workers]
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join(START_TIMEOUT)
    failures = [detail for status, detail in outcomes if status == "error"]
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(workers)} workers failed: {failures[0]}")
    return sum(count for _, count in outcomes) / elapsed
