"""Which provider answers, and how it reaches its model: read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

PROVIDERS = ("offline", "openai")


class ProviderSettingsError(ValueError):
    """AI_* settings that cannot work; the message names the variable."""


@dataclass(frozen=True)
class ProviderSettings:
    """`AI_PROVIDER` (`offline` | `openai`) and the OpenAI-compatible endpoint's settings."""

    provider: str = "offline"
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    max_response_bytes: int = 1024 * 1024
    max_prompt_chars: int = 60_000
    max_edits: int = 100

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProviderSettings:
        environ = os.environ if env is None else env
        provider = (environ.get("AI_PROVIDER") or "offline").strip().lower()
        if provider not in PROVIDERS:
            raise ProviderSettingsError(
                f"AI_PROVIDER must be one of {', '.join(PROVIDERS)}, not {provider!r}"
            )

        def number(name: str, default: float) -> float:
            raw = (environ.get(name) or "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                raise ProviderSettingsError(f"{name} must be a number, not {raw!r}") from None
            if value <= 0:
                raise ProviderSettingsError(f"{name} must be positive, not {raw!r}")
            return value

        return cls(
            provider=provider,
            base_url=(environ.get("AI_BASE_URL") or cls.base_url).rstrip("/"),
            model=environ.get("AI_MODEL") or cls.model,
            api_key=environ.get("AI_API_KEY") or None,
            timeout=number("AI_TIMEOUT", cls.timeout),
            max_response_bytes=int(number("AI_MAX_RESPONSE_BYTES", cls.max_response_bytes)),
            max_prompt_chars=int(number("AI_MAX_PROMPT_CHARS", cls.max_prompt_chars)),
            max_edits=int(number("AI_MAX_EDITS", cls.max_edits)),
        )
