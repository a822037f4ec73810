"""Fixed-window rate limits for logging in, kept in Redis (or in this process when it is down).

Two counters guard `POST /auth/token`: failed logins per normalised username and attempts per
client IP. When Redis does not answer, the same limits are counted in this process instead
(per process, so at most the number of workers times the limit), which neither locks
everyone out nor lets unlimited guesses through.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass

import redis
from flask import current_app, request

from api.problems import ApiProblem
from pearl.config import Config

log = logging.getLogger(__name__)
EXTENSION = "pearl-login-limiter"
KEY_PREFIX = "pearl:rl:"


@dataclass(frozen=True)
class Window:
    """A count in a fixed window and the seconds until the window ends."""

    count: int
    reset_in: int


class MemoryCounters:
    """Fixed-window counters in this process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}

    def incr(self, key: str, window: int) -> Window:
        now = time.monotonic()
        with self._lock:
            count, ends = self._counts.get(key, (0, 0.0))
            if ends <= now:
                count, ends = 0, now + window
            self._counts[key] = (count + 1, ends)
            if len(self._counts) > 100_000:
                self._prune(now)
            return Window(count + 1, math.ceil(ends - now))

    def get(self, key: str) -> Window:
        now = time.monotonic()
        with self._lock:
            count, ends = self._counts.get(key, (0, 0.0))
        return Window(count, math.ceil(ends - now)) if ends > now else Window(0, 0)

    def delete(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in [k for k, (_, ends) in self._counts.items() if ends <= now]:
            del self._counts[key]


class RedisCounters:
    """Fixed-window counters in Redis: INCR, and EXPIRE when the window starts."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def incr(self, key: str, window: int) -> Window:
        pipe = self.client.pipeline()
        pipe.incr(key)
        pipe.ttl(key)
        count, ttl = pipe.execute()
        if ttl < 0:  # a new window (or one whose EXPIRE was lost): start its clock
            self.client.expire(key, window)
            ttl = window
        return Window(int(count), int(ttl))

    def get(self, key: str) -> Window:
        pipe = self.client.pipeline()
        pipe.get(key)
        pipe.ttl(key)
        found, ttl = pipe.execute()
        return Window(int(found), max(int(ttl), 1)) if found is not None else Window(0, 0)

    def delete(self, key: str) -> None:
        self.client.delete(key)


class LoginLimiter:
    """Decides whether a login may be tried, and records how it went."""

    def __init__(self, config: Config, retry_redis_after: float = 5.0) -> None:
        self.config = config
        self.memory = MemoryCounters()
        self.redis = (
            RedisCounters(
                redis.Redis.from_url(
                    config.redis_url, socket_timeout=0.2, socket_connect_timeout=0.2
                )
            )
            if config.redis_url
            else None
        )
        self.retry_redis_after = retry_redis_after
        self._down_until = 0.0
        self._warned = False

    def check(self, username: str, ip: str) -> None:
        """Count an attempt from `ip`; a 429 problem if `ip` or `username` is over its limit."""
        config = self.config
        attempts = self._call("incr", _key("ip", ip), config.login_attempt_window)
        if attempts.count > config.login_max_attempts:
            raise too_many("too many login attempts from this address", attempts.reset_in)
        failures = self._call("get", _key("user", username))
        if failures.count >= config.login_max_failures:
            raise too_many("too many failed logins for this account", failures.reset_in)

    def failed(self, username: str) -> None:
        """Record a failed login for `username`."""
        self._call("incr", _key("user", username), self.config.login_failure_window)

    def succeeded(self, username: str) -> None:
        """A successful login clears the username's failures."""
        self._call("delete", _key("user", username))

    def _call(self, method: str, key: str, *args: int) -> Window:
        if self.redis is not None and time.monotonic() >= self._down_until:
            try:
                result = getattr(self.redis, method)(key, *args)
                self._warned = False
                return result if isinstance(result, Window) else Window(0, 0)
            except redis.RedisError as error:
                self._down_until = time.monotonic() + self.retry_redis_after
                if not self._warned:
                    self._warned = True
                    log.warning("login rate limits fall back to this process: %s", error)
        result = getattr(self.memory, method)(key, *args)
        return result if isinstance(result, Window) else Window(0, 0)


def _key(kind: str, value: str) -> str:
    """A Redis key that does not carry the raw username or address."""
    return KEY_PREFIX + kind + ":" + hashlib.sha256(value.encode()).hexdigest()[:40]


def too_many(detail: str, retry_after: int) -> ApiProblem:
    seconds = str(max(retry_after, 1))
    return ApiProblem(429, "Too Many Requests", detail, headers={"Retry-After": seconds})


def client_ip(config: Config) -> str:
    """The caller's address: the peer's, or with `trusted_proxy_hops` N the address the
    outermost of N trusted proxies saw (X-Forwarded-For entries left of it can be forged)."""
    hops = config.trusted_proxy_hops
    forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",")]
    if hops > 0 and len(forwarded) >= hops and forwarded[-hops]:
        return forwarded[-hops][:64]
    return request.remote_addr or "unknown"


def normalise_username(email: str) -> str:
    """The key a username is limited under: what `users.authenticate` looks up."""
    return email.strip().lower()


def login_limiter() -> LoginLimiter:
    """The app's limiter, made on first use."""
    found = current_app.extensions.get(EXTENSION)
    if found is None:
        from api.services import services

        found = current_app.extensions[EXTENSION] = LoginLimiter(services().config)
    limiter: LoginLimiter = found
    return limiter
