"""The default provider: deterministic rules, no network and no model."""

from __future__ import annotations

from typing import Any

from suggestions.context import BranchContext
from suggestions.heuristics.consistency import check_consistency
from suggestions.heuristics.mentions import link_mentions
from suggestions.providers.base import NeedsLanguageModel, ProviderAnswer, ProviderError

PROMPT_VERSION = "offline-rules-1"


class OfflineProvider:
    """Answers `link-mentions` and `consistency` by rule; `expand` needs a language model."""

    name = "offline"

    def suggest(self, kind: str, context: BranchContext, params: dict[str, Any]) -> ProviderAnswer:
        if kind == "link-mentions":
            edits, flags = link_mentions(context)
        elif kind == "consistency":
            edits, flags = check_consistency(context)
        elif kind == "expand":
            raise NeedsLanguageModel(
                "expand needs a language model: the offline provider cannot invent content; "
                "set AI_PROVIDER=openai with AI_BASE_URL, AI_MODEL and AI_API_KEY"
            )
        else:
            raise ProviderError(f"unknown suggestion kind {kind!r}")
        for collection in context.truncated:
            flags.append(
                {
                    "kind": "truncated",
                    "entity": None,
                    "message": f"only part of the branch's {collection} was examined",
                }
            )
        return ProviderAnswer(
            edits=list(edits), flags=flags, model=None, prompt_version=PROMPT_VERSION
        )
