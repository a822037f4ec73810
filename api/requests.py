"""Per-request plumbing: request ids that become correlation ids, and safe headers."""

from __future__ import annotations

from uuid import uuid4

from flask import Flask, Response, g, request


def register(app: Flask) -> None:
    @app.before_request
    def assign_request_id() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if 0 < len(given) <= 128 and given.isprintable() else str(uuid4())

    @app.after_request
    def stamp(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault("Cache-Control", "no-store")
        return response
