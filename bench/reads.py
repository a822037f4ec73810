"""`as-of` and `queries`: latency of reads over HTTP on big, projected worlds.

Every figure is measured over real HTTP against the running API (one keep-alive session).
"Uncached" requests follow a `FLUSHDB` of the query cache's Redis (not timed), so the API
computes the answer from PostgreSQL; "cached" is the same request sent again at once, which
the API answers from Redis (the key carries the world's projected position).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import redis
import requests

from bench.archives import FACTIONS, WORDS, Archive
from bench.infra import Stack, User
from bench.report import Figure, percentile, progress

TIMEOUT = 30
Request = tuple[str, dict[str, Any]]


class Reader:
    """Timed GETs as one user, and the means to empty the query cache."""

    def __init__(self, stack: Stack, user: User) -> None:
        self.stack = stack
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers.update(user.auth)
        self.cache = redis.Redis.from_url(stack.redis_url)

    def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[float, Any]:
        """(milliseconds, JSON body) of a GET that must answer 200."""
        began = time.perf_counter()
        response = self.session.get(self.stack.api + path, params=params, timeout=TIMEOUT)
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} {params}: {response.status_code} {response.text}")
        return elapsed, response.json()

    def floor(self, samples: int) -> list[float]:
        """Milliseconds of `GET /healthz` on the same session: what any request costs here
        (HTTP, gunicorn, Flask, the client), the floor under every read below."""
        times = []
        for i in range(-3, samples):
            began = time.perf_counter()
            response = self.session.get(self.stack.url + "/healthz", timeout=TIMEOUT)
            elapsed = (time.perf_counter() - began) * 1000
            response.raise_for_status()
            if i >= 0:
                times.append(elapsed)
        return times

    def uncached_then_cached(
        self, samples: int, request: Callable[[int], Request]
    ) -> tuple[list[float], list[float]]:
        uncached, cached = [], []
        for i in range(-3, samples):  # three untimed rounds warm connections and plans
            path, params = request(i)
            self.cache.flushdb()
            first, body = self.get(path, params)
            if not body.get("items"):
                raise RuntimeError(f"GET {path} {params} found nothing: the figure would lie")
            second, _ = self.get(path, params)
            if i >= 0:
                uncached.append(first)
                cached.append(second)
        return uncached, cached

    def close(self) -> None:
        self.session.close()
        self.cache.close()


def branch(archive: Archive) -> str:
    return f"/worlds/{archive.world_id}/branches/main"


def as_of(reader: Reader, small: Archive, big: Archive, samples: int) -> list[Figure]:
    p50s: dict[int, float] = {}
    for archive in (small, big):
        _, found = reader.get(branch(archive))
        middle = int(found["head_version"]) // 2
        progress(f"as-of: first page of elements as of version {middle} of {archive.events:,}")
        params: dict[str, Any] = {"as_of_version": middle, "limit": 50}
        path = f"{branch(archive)}/elements"

        def request(i: int, path: str = path, params: dict[str, Any] = params) -> Request:
            return path, params

        uncached, _ = reader.uncached_then_cached(samples, request)
        p50s[archive.events] = percentile(uncached, 50)
    small_p50, big_p50 = p50s[small.events], p50s[big.events]
    scale = big_p50 / small_p50
    within = scale <= 1.5 and big_p50 < 10
    return [
        Figure.plain(
            "as-of",
            f"p50 first page as_of middle, {small.events:,} events",
            small_p50,
            "ms (HTTP, uncached)",
        ),
        Figure(
            "as-of",
            f"p50 first page as_of middle, {big.events:,} events",
            big_p50,
            "ms (HTTP, uncached); ratio = p50(big) / p50(small)",
            f"p50 at {small.events:,} events",
            small_p50,
            scale,
            "ratio <= 1.5 and < 10 ms",
            within,
        ),
    ]


def queries(reader: Reader, big: Archive, samples: int) -> list[Figure]:
    base = branch(big)

    def containment(i: int) -> tuple[str, dict[str, Any]]:
        return f"{base}/elements", {"metadata": json.dumps({"faction": f"f{i % FACTIONS}"})}

    def search(i: int) -> tuple[str, dict[str, Any]]:
        return f"{base}/search", {"q": WORDS[i % len(WORDS)]}

    def timeline_range(i: int) -> tuple[str, dict[str, Any]]:
        start = 1 + (i * 37) % 1900
        return f"{base}/timelines/{big.timeline_id}/events", {
            "from": str(start),
            "to": str(start + 10),
        }

    floor = reader.floor(samples)
    floor_p50, floor_p99 = percentile(floor, 50), percentile(floor, 99)
    figures = [
        Figure.plain("queries", "GET /healthz p50 (the HTTP floor)", floor_p50, "ms (HTTP)"),
        Figure.plain("queries", "GET /healthz p99 (the HTTP floor)", floor_p99, "ms (HTTP)"),
    ]
    cases = (
        ("metadata containment", containment),
        ("full-text search", search),
        ("timeline range", timeline_range),
    )
    for name, request in cases:
        progress(f"queries: {name}, {samples} uncached + {samples} cached")
        uncached, cached = reader.uncached_then_cached(samples, request)
        for label, times, limit in (("uncached", uncached, 20.0), ("cached", cached, 2.0)):
            p50, p99 = percentile(times, 50), percentile(times, 99)
            unit = f"ms (HTTP, {label}); ratio = ours / /healthz; p99 target < {limit:g} ms"
            figures.append(
                Figure(
                    "queries",
                    f"{name} p50, {label}",
                    p50,
                    unit,
                    "GET /healthz p50, same session",
                    floor_p50,
                    p50 / floor_p50,
                    "-",
                    None,
                )
            )
            figures.append(
                Figure(
                    "queries",
                    f"{name} p99, {label}",
                    p99,
                    unit,
                    "GET /healthz p99, same session",
                    floor_p99,
                    p99 / floor_p99,
                    f"< {limit:g} ms",
                    p99 < limit,
                )
            )
    return figures
