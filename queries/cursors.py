"""Opaque keyset cursors: the sort key of the last item of a page, signed by nothing but shape."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


class BadCursor(ValueError):
    """A cursor that this API did not hand out (or that belongs to another ordering)."""


def encode(kind: str, key: list[Any]) -> str:
    raw = json.dumps({"k": kind, "v": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(kind: str, cursor: str, arity: int, types: tuple[type, ...] | None = None) -> list[Any]:
    """The key values of a cursor of `kind`; `types` (default: all int) checks each one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor("the cursor is not one this API handed out") from None
    if (
        not isinstance(data, dict)
        or data.get("k") != kind
        or not isinstance(data.get("v"), list)
        or len(data["v"]) != arity
        or not all(
            isinstance(v, expected) and not isinstance(v, bool)
            for v, expected in zip(data["v"], types or (int,) * arity, strict=True)
        )
    ):
        raise BadCursor("the cursor does not belong to this list")
    return list(data["v"])
