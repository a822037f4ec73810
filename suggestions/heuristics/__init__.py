"""Deterministic suggestion rules that need no language model (the offline provider's)."""
