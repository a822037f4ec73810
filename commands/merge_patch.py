"""RFC 7386 JSON merge patch, used for every `metadata` change."""

from __future__ import annotations

from typing import Any


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """Return `target` with `patch` applied; neither argument is modified."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def merge_patch_between(source: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """The RFC 7386 patch that turns `source` into `target` (`{}` when they are equal).

    A `null` inside `target` cannot be expressed by a merge patch (it means 'remove'), so such
    keys end up removed: the one thing this format cannot say.
    """
    patch: dict[str, Any] = {}
    for key in source.keys() - target.keys():
        patch[key] = None
    for key, value in target.items():
        before = source.get(key)
        if key in source and before == value:
            continue
        if isinstance(before, dict) and isinstance(value, dict):
            patch[key] = merge_patch_between(before, value)
        else:
            patch[key] = value
    return patch
