"""Conditional requests: `If-Match` on writes and `If-None-Match` on reads."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from api.problems import ApiProblem


def expected_version() -> int | None:
    """The version named by `If-Match: "17"`, or None when the header is absent or `*`."""
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    value = raw.strip()
    if value.startswith('"') and value.endswith('"') and value[1:-1].isdigit():
        return int(value[1:-1])
    raise ApiProblem(
        412,
        "Precondition failed",
        'If-Match must be a strong entity tag holding a version, such as "17"',
    )


def read(resource: dict[str, Any]) -> Any:
    """A GET result with its strong ETag; 304 when `If-None-Match` already names it."""
    etag = f'"{resource["version"]}"'
    wanted = request.headers.get("If-None-Match", "")
    if etag in [tag.strip() for tag in wanted.split(",")] or wanted.strip() == "*":
        response = Response(status=304)
        response.headers["ETag"] = etag
        return response
    return resource, 200, {"ETag": etag}
