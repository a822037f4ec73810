"""`fork`: `POST .../branches` on a 100,000-entity world, and the first page of the new branch.

The first fork is timed as a client sees it (the API worker may have to load the branch);
a second fork, usually warm, is reported beside it. Reads compare the first page of
elements on the new branch with the same page on `main`, uncached, after the projector has
applied the fork.
"""

from __future__ import annotations

import time

from bench.archives import Archive
from bench.reads import Reader, Request, branch
from bench.report import Figure, percentile, progress

TIMEOUT = 120


def _fork(reader: Reader, archive: Archive, name: str) -> tuple[float, int]:
    """(seconds to the 201, position) of forking `main` as `name`."""
    url = f"{reader.stack.api}/worlds/{archive.world_id}/branches"
    began = time.perf_counter()
    response = reader.session.post(url, json={"name": name, "from": "main"}, timeout=TIMEOUT)
    elapsed = time.perf_counter() - began
    if response.status_code != 201:
        raise RuntimeError(f"fork: {response.status_code} {response.text}")
    return elapsed, int(response.headers["X-Position"])


def _projected(reader: Reader, archive: Archive, position: int) -> float:
    """Seconds until a read with `min_position` answers 200, retrying its 503 ("projection
    behind", Retry-After) as a client would: the projector copies a fork's rows."""
    url = reader.stack.api + branch(archive)
    began = time.perf_counter()
    while True:
        response = reader.session.get(url, params={"min_position": position}, timeout=TIMEOUT)
        if response.status_code == 200:
            return time.perf_counter() - began
        if response.status_code != 503 or time.perf_counter() - began > TIMEOUT:
            raise RuntimeError(f"fork read: {response.status_code} {response.text}")
        time.sleep(min(float(response.headers.get("Retry-After", "1")), 1.0))


def run(reader: Reader, archive: Archive, samples: int) -> list[Figure]:
    progress(f"fork: forking main of a {archive.shape.elements:,}-element world")
    cold, position = _fork(reader, archive, "what-if")
    warm, position = _fork(reader, archive, "what-if-2")
    projected = _projected(reader, archive, position)  # both forks are in the read tables
    pages: dict[str, float] = {}
    for name in ("main", "what-if"):
        path = f"/worlds/{archive.world_id}/branches/{name}/elements"

        def first_page(i: int, path: str = path) -> Request:
            return path, {"limit": 50}

        uncached, _ = reader.uncached_then_cached(samples, first_page)
        pages[name] = percentile(uncached, 50)
    page_ratio = pages["what-if"] / pages["main"]
    return [
        Figure(
            "fork",
            f"fork of {archive.shape.elements:,} entities, first (cold)",
            cold * 1000,
            "ms to 201",
            "-",
            None,
            None,
            "< 1000 ms",
            cold < 1.0,
        ),
        Figure.plain("fork", "second fork (warm)", warm * 1000, "ms to 201"),
        Figure.plain(
            "fork",
            "both forks in the read tables",
            projected * 1000,
            "ms after the second 201 (the projector copies the rows)",
        ),
        Figure(
            "fork",
            "first page on the fork, p50",
            pages["what-if"],
            "ms (HTTP, uncached); ratio = fork / main",
            "first page on main, p50 ms",
            pages["main"],
            page_ratio,
            "ratio <= 1.25",
            page_ratio <= 1.25,
        ),
    ]
