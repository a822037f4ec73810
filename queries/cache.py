"""A Redis cache for hot queries whose keys carry the world's projected position.

A cached answer is only ever found under the position it was computed at, so it can never be
staler than the position it is asked for. When Redis is down the cache steps aside for a
few seconds at a time and queries are answered uncached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis

log = logging.getLogger(__name__)


class QueryCache:
    def __init__(self, url: str | None, ttl: int = 300, retry_after: float = 5.0) -> None:
        self.ttl = ttl
        self.retry_after = retry_after
        self._down_until = 0.0
        self._client = (
            redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
            if url
            else None
        )

    def key(self, world_id: str, position: int, request_key: str) -> str:
        digest = hashlib.sha256(request_key.encode()).hexdigest()[:32]
        return f"pearl:q:{world_id}:{position}:{digest}"

    def fetch(self, key: str, compute: Callable[[], Any]) -> Any:
        """The cached value under `key`, or `compute()` (stored for next time)."""
        computed: list[Any] = []

        def encoded() -> bytes:
            computed.append(compute())
            return json.dumps(computed[0]).encode()

        found = self.fetch_bytes(key, encoded)
        return computed[0] if computed else json.loads(found)

    def fetch_bytes(self, key: str, compute: Callable[[], bytes]) -> bytes:
        """The bytes cached under `key`, or `compute()` (stored for next time): a hit costs
        one Redis round trip and no decoding."""
        client = self._available()
        if client is not None:
            try:
                found: Any = client.get(key)
                if found is not None:
                    return bytes(found)
            except redis.RedisError as error:
                self._mark_down(error)
                client = None
        value = compute()
        if client is not None:
            try:
                client.set(key, value, ex=self.ttl)
            except redis.RedisError as error:
                self._mark_down(error)
        return value

    def ping(self) -> bool:
        """True when Redis answers now (ignores the back-off)."""
        if self._client is None:
            return False
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False

    def _available(self) -> redis.Redis | None:
        if self._client is None or time.monotonic() < self._down_until:
            return None
        return self._client

    def _mark_down(self, error: Exception) -> None:
        log.warning("query cache unavailable, answering uncached: %s", error)
        self._down_until = time.monotonic() + self.retry_after
