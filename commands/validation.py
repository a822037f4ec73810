"""Checks shared by every command: names, free text, metadata, tags."""

from __future__ import annotations

from typing import Any

from commands.errors import InvalidCommand
from commands.json_encoding import compact_encoder

MAX_NAME = 200
MAX_TEXT = 100_000
MAX_METADATA_BYTES = 64 * 1024
MAX_TAGS = 100


def check_name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidCommand.field(field, "must be a non-empty string")
    check_storable(value, field)
    if len(value) > MAX_NAME:
        raise InvalidCommand.field(field, f"must be at most {MAX_NAME} characters")
    return value


def check_text(value: Any, field: str, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidCommand.field(field, "must be a string")
    check_storable(value, field)
    if len(value) > MAX_TEXT:
        raise InvalidCommand.field(field, f"must be at most {MAX_TEXT} characters")
    return value


_compact = compact_encoder(sort_keys=False, ensure_ascii=False)

RESERVED_KEYS = frozenset({"_type_", "_data_"})


def reserved_path(value: Any, path: str = "") -> str | None:
    """Where `value` holds an object the event store would read back as a typed value."""
    if isinstance(value, dict):
        if value.keys() >= RESERVED_KEYS:
            return path or "(top level)"
        for key, item in value.items():
            found = reserved_path(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = reserved_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


def nul_path(value: Any, path: str = "") -> str | None:
    """Where `value` holds a NUL character (PostgreSQL text cannot store one)."""
    if isinstance(value, str):
        return (path or "(top level)") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return here
            found = nul_path(item, here)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


def maybe_unstorable(encoded: str) -> bool:
    """Whether the value `encoded` is the JSON of (ASCII-only or not) might fail
    `check_storable`: JSON writes a NUL as \\u0000 and every `_type_` key as "_type_".
    False means it passes for sure; True, that `check_storable` must look."""
    return "\\u0000" in encoded or '"_type_"' in encoded


def check_storable(value: Any, field: str) -> None:
    """Refuse what the stores cannot hold faithfully: NUL characters, and objects with both
    `_type_` and `_data_` keys (the event store reads that shape back as a typed value)."""
    if type(value) is str and "\x00" not in value:
        return  # the common case, decided by one scan
    where = nul_path(value)
    if where is not None:
        raise InvalidCommand.field(field, f"must not contain NUL characters (at {where})")
    where = reserved_path(value)
    if where is not None:
        raise InvalidCommand.field(
            field, f"an object with both '_type_' and '_data_' keys is reserved (at {where})"
        )


def check_metadata(value: Any, field: str = "metadata") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidCommand.field(field, "must be a JSON object")
    try:
        encoded = _compact(value)
    except TypeError:
        check_storable(value, field)  # what is unstorable is refused as such first
        raise
    if maybe_unstorable(encoded):
        check_storable(value, field)
    size = len(encoded.encode())
    if size > MAX_METADATA_BYTES:
        raise InvalidCommand.field(field, f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
    return value


def check_tags(value: Any, field: str = "tags") -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InvalidCommand.field(field, "must be a list of strings")
    if len(value) > MAX_TAGS:
        raise InvalidCommand.field(field, f"must have at most {MAX_TAGS} tags")
    if any(not 1 <= len(t) <= MAX_NAME for t in value):
        raise InvalidCommand.field(field, f"each tag must be 1-{MAX_NAME} characters")
    return list(dict.fromkeys(value))
