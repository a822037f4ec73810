"""A provider that asks any OpenAI-compatible chat-completions endpoint.

`POST {AI_BASE_URL}/chat/completions` with `response_format: {"type": "json_object"}`. A
timeout, a refused connection, HTTP 429 and 5xx are passing failures (the task retries them);
any other 4xx, an oversized or malformed answer is final. The answer is untrusted input: see
`answer_parsing`.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from typing import Any

from suggestions.context import BranchContext
from suggestions.providers.answer_parsing import parse_completion
from suggestions.providers.base import ProviderAnswer, ProviderError, RetryableProviderError
from suggestions.providers.prompts import PROMPT_VERSION, TASKS, system_prompt, user_message
from suggestions.providers.settings import ProviderSettings

log = logging.getLogger(__name__)


class OpenAICompatibleProvider:
    name = "openai"

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings

    def suggest(self, kind: str, context: BranchContext, params: dict[str, Any]) -> ProviderAnswer:
        if kind not in TASKS:
            raise ProviderError(f"unknown suggestion kind {kind!r}")
        s = self.settings
        request_body = {
            "model": s.model,
            "messages": [
                {"role": "system", "content": system_prompt(kind)},
                {
                    "role": "user",
                    "content": user_message(kind, context, params, s.max_prompt_chars),
                },
            ],
            "response_format": {"type": "json_object"},
            "temperature": 0,
        }
        raw = self._post(json.dumps(request_body, ensure_ascii=False).encode())
        return parse_completion(
            raw, model=s.model, prompt_version=PROMPT_VERSION, max_edits=s.max_edits
        )

    def _post(self, body: bytes) -> bytes:
        s = self.settings
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if s.api_key:
            headers["Authorization"] = f"Bearer {s.api_key}"
        request = urllib.request.Request(
            f"{s.base_url}/chat/completions", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=s.timeout) as response:
                raw: bytes = response.read(s.max_response_bytes + 1)
        except urllib.error.HTTPError as error:
            raise _http_failure(error) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            reason = getattr(error, "reason", None) or error
            raise RetryableProviderError(f"could not reach the model endpoint: {reason}") from None
        if len(raw) > s.max_response_bytes:
            raise ProviderError(
                f"the provider's response is larger than {s.max_response_bytes} bytes"
            )
        return raw


def _http_failure(error: urllib.error.HTTPError) -> ProviderError:
    try:
        excerpt = error.read(300).decode("utf-8", "replace").strip()
    except OSError:
        excerpt = ""
    finally:
        error.close()
    detail = f"the model endpoint answered HTTP {error.code}" + (f": {excerpt}" if excerpt else "")
    log.warning("%s", detail)
    if error.code == 429 or error.code >= 500:
        failure = RetryableProviderError(detail)
        failure.retry_after = _seconds(error.headers.get("Retry-After") if error.headers else None)
        return failure
    return ProviderError(detail)


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
