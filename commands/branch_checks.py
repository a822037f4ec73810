"""Field checks for PATCH-style changes, and names used in messages."""

from __future__ import annotations

from typing import Any

from commands.errors import InvalidCommand
from commands.validation import check_name, check_tags, check_text

Entity = dict[str, Any]


def checked_changes(changes: Entity, allowed: set[str]) -> Entity:
    """Validate the plain fields of a PATCH (the ones that map to an `...Updated` event)."""
    checks = {
        "name": lambda v: check_name(v),
        "title": lambda v: check_name(v, "title"),
        "kind": lambda v: check_name(v, "kind"),
        "description": lambda v: check_text(v, "description"),
        "summary": lambda v: check_text(v, "summary"),
        "tags": lambda v: check_tags(v),
        "metadata": lambda v: _check_patch(v),
    }
    return {k: checks[k](v) if k in checks else v for k, v in changes.items() if k in allowed}


def _check_patch(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidCommand.field("metadata", "a metadata patch must be a JSON object")
    return value


def singular(collection: str) -> str:
    return {
        "locations": "location",
        "elements": "element",
        "timelines": "timeline",
        "timeline_events": "timeline event",
    }[collection]
