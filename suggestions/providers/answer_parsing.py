"""A chat-completions response read as untrusted input.

Whatever the endpoint sends, the result is either a `ProviderAnswer` whose edits are small,
JSON-safe values (the write side then validates each one and drops the invalid ones with a
reason) or a `ProviderError` saying what was wrong. Nothing here raises anything else.
"""

from __future__ import annotations

import json
import re
from typing import Any

from suggestions.providers.base import ProviderAnswer, ProviderError

EDIT_KEYS = ("command", "target", "body", "expected_version")
MAX_EDIT_BYTES = 64 * 1024 + 4096  # a full metadata object plus the rest of an edit
MAX_DEPTH = 24
MAX_FLAGS = 100
FLAG_LIMITS = {"kind": 100, "entity": 300, "message": 1000}
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def parse_completion(
    raw: bytes, *, model: str, prompt_version: str, max_edits: int = 100
) -> ProviderAnswer:
    """The answer inside a chat-completions response body (`raw`, already size-capped)."""
    envelope = _loads(raw, "the provider's response is not JSON")
    if not isinstance(envelope, dict):
        raise ProviderError("the provider's response is not a JSON object")
    content = _content(envelope)
    fenced = _FENCE.match(content)
    answer = _loads((fenced.group(1) if fenced else content).encode(), "")
    if not isinstance(answer, dict):
        raise ProviderError("the model's answer is not a JSON object with edits and flags")
    raw_edits = answer.get("edits", [])
    raw_flags = answer.get("flags", [])
    if not isinstance(raw_edits, list):
        raise ProviderError("the model's answer has 'edits' that is not a list")
    flags = _flags(raw_flags)
    if len(raw_edits) > max_edits:
        flags.append(
            {
                "kind": "answer-cut",
                "entity": None,
                "message": f"the model proposed {len(raw_edits)} edits; the first "
                f"{max_edits} were kept",
            }
        )
    return ProviderAnswer(
        edits=[_edit(e) for e in raw_edits[:max_edits]],
        flags=flags,
        model=_text(envelope.get("model"), 200) or model,
        prompt_version=prompt_version,
        usage=_usage(envelope.get("usage")),
    )


def _loads(raw: bytes, message: str) -> Any:
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise ProviderError(message or "the model's answer is not valid JSON") from None


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them."""
    raise ValueError(f"{name} is not a JSON number")


def _content(envelope: dict[str, Any]) -> str:
    choices = envelope.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        error = envelope.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            raise ProviderError(f"the provider answered with an error: {error['message'][:300]}")
        raise ProviderError("the provider's response has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise ProviderError("the provider's response has no message")
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        raise ProviderError(f"the model refused: {refusal[:300]}")
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        raise ProviderError("the model's message has no text content")
    return content


def _edit(raw: Any) -> Any:
    """The edit with only the keys an edit has, made safe to store; or a small stand-in."""
    value = {k: raw[k] for k in EDIT_KEYS if k in raw} if isinstance(raw, dict) else raw
    value = clean(value)
    if _depth(value) > MAX_DEPTH:
        return _stand_in(raw, f"nested deeper than {MAX_DEPTH} levels")
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > MAX_EDIT_BYTES:
        return _stand_in(raw, f"{size} bytes, more than {MAX_EDIT_BYTES}")
    return value


def _stand_in(raw: Any, why: str) -> dict[str, Any]:
    """What the write side sees instead of an unusable edit: it drops it, saying why."""
    head = {
        k: _text(raw.get(k), 300)
        for k in ("command", "target")
        if isinstance(raw, dict) and isinstance(raw.get(k), str)
    }
    return {**head, "body": f"(omitted: the edit was {why})"}


def _flags(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        return []
    flags: list[dict[str, Any]] = []
    for item in raw[:MAX_FLAGS]:
        if not isinstance(item, dict) or not isinstance(item.get("message"), str):
            continue
        flags.append({k: _text(item.get(k), limit) for k, limit in FLAG_LIMITS.items()})
    return flags


def _usage(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    return {
        k: raw[k]
        for k in USAGE_KEYS
        if isinstance(raw.get(k), int) and not isinstance(raw[k], bool) and 0 <= raw[k] < 10**12
    }


def _text(value: Any, limit: int) -> str | None:
    return clean(value)[:limit] if isinstance(value, str) else None


def clean(value: Any, depth: int = 0) -> Any:
    """JSON values PostgreSQL will store: no NUL characters, no lone surrogates."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if depth > MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {clean(k, depth + 1): clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v, depth + 1) for v in value]
    return value


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level
