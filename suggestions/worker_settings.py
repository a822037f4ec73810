"""How the suggestion worker retries, waits and reads: from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerSettings:
    """`SUGGESTION_*` settings; the defaults suit a real model endpoint."""

    database_url: str
    max_retries: int = 4  # retries after the first attempt
    retry_backoff: float = 2.0  # seconds before the first retry; doubles each time
    retry_backoff_max: float = 120.0
    read_model_wait: float = 30.0  # how long one attempt waits for the projector
    context_limit: int = 5000  # entities per collection a provider may see

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSettings:
        environ = os.environ if env is None else env
        database_url = environ.get("DATABASE_URL") or ""
        if not database_url:
            raise ValueError("DATABASE_URL is not set (the launcher sets it for the worker)")

        def number(name: str, default: float) -> float:
            raw = (environ.get(name) or "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                raise ValueError(f"{name} must be a number, not {raw!r}") from None
            if value < 0:
                raise ValueError(f"{name} must not be negative, not {raw!r}")
            return value

        return cls(
            database_url=database_url,
            max_retries=int(number("SUGGESTION_MAX_RETRIES", cls.max_retries)),
            retry_backoff=number("SUGGESTION_RETRY_BACKOFF", cls.retry_backoff),
            retry_backoff_max=number("SUGGESTION_RETRY_BACKOFF_MAX", cls.retry_backoff_max),
            read_model_wait=number("SUGGESTION_READ_MODEL_WAIT", cls.read_model_wait),
            context_limit=max(1, int(number("SUGGESTION_CONTEXT_LIMIT", cls.context_limit))),
        )

    def backoff(self, retries: int, asked: float | None = None) -> float:
        """Seconds before retry number `retries + 1` (at least what the provider asked)."""
        delay = min(self.retry_backoff_max, self.retry_backoff * 2**retries)
        return min(self.retry_backoff_max, max(delay, asked or 0.0))
