"""`http-commands`: AddEntity over HTTP, 16 keep-alive clients, against `GET /healthz`.

Each client (a thread with its own `requests.Session`) owns a world and adds elements to its
`main` branch until the time is up; the baseline is the same 16 clients asking the same
server for `/healthz`. The projection lag is measured in a second run of the same load:
a poller, a process of its own, reads the projector's position every few milliseconds, and
a command's lag is the time from its 201 to the first poll that saw the position it
answered. Lags are rounded up to the poll interval; and a client thread stamps its 201 only
once it has the GIL back, so lags shorter than that wait read as 0. The poller costs
PostgreSQL and the client side about 0.9 ms of CPU per command (measured: 238 commands/s
without it, 202 with it), which is why it does not run while the throughput is measured.
"""

from __future__ import annotations

import bisect
import contextlib
import multiprocessing
import threading
import time
from typing import Any

import requests

from bench.infra import Stack, User, connect
from bench.report import Figure, percentile, progress, ratio

CLIENTS = 16
POLL_INTERVAL = 0.002
TIMEOUT = 30


def _load(stack: Stack, seconds: float, request: Any) -> tuple[float, int]:
    """Run `request(session, index, count)` from CLIENTS threads for `seconds`: (rate, errors)."""
    counts = [0] * CLIENTS
    errors = [0] * CLIENTS
    barrier = threading.Barrier(CLIENTS + 1)
    stop = threading.Event()

    def client(index: int) -> None:
        with requests.Session() as session:
            session.trust_env = False  # straight to the loopback server, whatever the proxy
            request(session, index, -1)  # open the connection (and warm up) before the clock
            barrier.wait(TIMEOUT)
            while not stop.is_set():
                if request(session, index, counts[index]):
                    counts[index] += 1
                else:
                    errors[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    barrier.wait(TIMEOUT)
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(TIMEOUT)
    return sum(counts) / (time.perf_counter() - began), sum(errors)


def _poll_positions(database_url: str, ready: Any, stop: Any, found: Any) -> None:
    """The poller process: (monotonic time, position) at every change, sent when stopped."""
    times: list[float] = []
    positions: list[int] = []
    with contextlib.closing(connect(database_url)) as conn, conn.cursor() as cur:
        conn.autocommit = True
        while not stop.is_set():
            cur.execute("SELECT position FROM projection_positions WHERE name = 'read_model'")
            row = cur.fetchone()
            now = time.monotonic()
            position = int(row[0]) if row else 0
            if not positions or position > positions[-1]:
                times.append(now)
                positions.append(position)
            ready.set()
            time.sleep(POLL_INTERVAL)
    found.send((times, positions))
    found.close()


class PositionPoller:
    """Samples the read model's position from a process of its own.

    In a thread beside the 16 clients it would wait for their GIL before reading the clock
    and report lags up to tens of milliseconds too long. `time.monotonic` is the system's
    CLOCK_MONOTONIC, the same clock in every process, so its times compare with the clients'.
    """

    def __init__(self, database_url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready, self._stop = context.Event(), context.Event()
        self._found, sending = context.Pipe(duplex=False)
        args = (database_url, self._ready, self._stop, sending)
        self.process = context.Process(target=_poll_positions, args=args, daemon=True)
        self.times: list[float] = []
        self.positions: list[int] = []

    def start(self) -> None:
        """Start polling; returns once the first poll is in (the process takes a while)."""
        self.process.start()
        if not self._ready.wait(TIMEOUT):
            raise RuntimeError("the position poller did not start")

    def finish(self) -> None:
        """Stop polling and collect what it saw."""
        self._stop.set()
        if self._found.poll(TIMEOUT):
            self.times, self.positions = self._found.recv()
        self.process.join(TIMEOUT)

    def lag(self, answered_at: float, position: int) -> float | None:
        """Seconds from `answered_at` until the projection was first seen at `position`."""
        index = bisect.bisect_left(self.positions, position)
        if index == len(self.positions):
            return None
        return max(0.0, self.times[index] - answered_at)


def _projected(database_url: str) -> int:
    with contextlib.closing(connect(database_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT position FROM projection_positions WHERE name = 'read_model'")
        row = cur.fetchone()
        return int(row[0]) if row else 0


def run(stack: Stack, seconds: float) -> list[Figure]:
    users: list[User] = [stack.register() for _ in range(CLIENTS)]
    worlds = []
    for user in users:
        created = requests.post(
            f"{stack.api}/worlds", json={"name": "Load"}, headers=user.auth, timeout=TIMEOUT
        )
        created.raise_for_status()
        worlds.append(created.json()["id"])
    answered: list[tuple[float, int]] = []
    lock = threading.Lock()

    def command(session: requests.Session, index: int, count: int) -> bool:
        body: dict[str, Any] = {
            "kind": "character",
            "name": f"Loader {count}",
            "metadata": {"n": count},
        }
        url = f"{stack.api}/worlds/{worlds[index]}/branches/main/elements"
        response = session.post(url, json=body, headers=users[index].auth, timeout=TIMEOUT)
        if response.status_code != 201:
            return False
        if count >= 0:
            at = time.monotonic()
            with lock:
                answered.append((at, int(response.headers["X-Position"])))
        return True

    def healthz(session: requests.Session, index: int, count: int) -> bool:
        return session.get(f"{stack.url}/healthz", timeout=TIMEOUT).status_code == 200

    progress(f"http-commands: {CLIENTS} clients adding elements for {seconds:.0f} s")
    ours, failed = _load(stack, seconds, command)
    progress(f"http-commands: {CLIENTS} clients on /healthz for {seconds:.0f} s")
    base, base_failed = _load(stack, seconds, healthz)
    answered.clear()
    poller = PositionPoller(stack.database_url)
    poller.start()
    progress(f"http-commands: the same load again for {seconds:.0f} s, polling the projection")
    try:
        _, lag_failed = _load(stack, seconds, command)
        failed += lag_failed
        # let the projector finish what was answered, then stop polling
        last = max((p for _, p in answered), default=0)
        deadline = time.monotonic() + 60
        while _projected(stack.database_url) < last and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(3 * POLL_INTERVAL)  # and the poller saw it
    finally:
        poller.finish()
    lags = [poller.lag(at, position) for at, position in answered]
    seen = [lag * 1000 for lag in lags if lag is not None]
    unseen = len(lags) - len(seen)
    r = ratio(ours, base)
    p99 = percentile(seen, 99) if not unseen else float("inf")
    note = f"; {failed} non-201" if failed else ""
    return [
        Figure(
            "http-commands",
            f"commands/s, {CLIENTS} clients{note}",
            ours,
            "commands/s",
            f"GET /healthz/s, {CLIENTS} clients",
            base,
            r,
            "ratio >= 0.4",
            r is not None and r >= 0.4 and not failed and not base_failed,
        ),
        Figure.plain(
            "http-commands",
            f"projection lag p50 ({len(seen)} commands)",
            percentile(seen, 50),
            "ms",
        ),
        Figure(
            "http-commands",
            f"projection lag p99 ({unseen} never seen)",
            p99,
            "ms",
            "-",
            None,
            None,
            "< 100 ms",
            p99 < 100,
        ),
    ]
