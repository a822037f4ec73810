"""Suggestion providers behind one interface, chosen by `AI_PROVIDER`."""

from __future__ import annotations

from suggestions.providers.base import Provider
from suggestions.providers.settings import ProviderSettings


def make_provider(settings: ProviderSettings) -> Provider:
    """The provider the settings ask for (`offline` unless `AI_PROVIDER=openai`)."""
    if settings.provider == "openai":
        from suggestions.providers.openai_compatible import OpenAICompatibleProvider

        return OpenAICompatibleProvider(settings)
    from suggestions.providers.offline import OfflineProvider

    return OfflineProvider()
