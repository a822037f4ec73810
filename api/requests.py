"""Per-request plumbing: request ids that become correlation ids, security headers and CORS.

CORS is off unless `CORS_ORIGINS` names exact origins; a request from any other origin gets
no CORS headers at all. Tokens travel in the Authorization header, never in cookies, so
credentials are not allowed and an allowed origin is echoed, never `*`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from uuid import uuid4

from flask import Flask, Response, g, request

from api.problems import problem
from api.services import services

# JSON and problem responses load nothing and may not be framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The /docs page: its inline <style> blocks (by hash) and nothing else.
DOCS_CSP = (
    "default-src 'none'; style-src {styles}; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"
CORS_METHODS = "GET, POST, PUT, PATCH, DELETE"
CORS_HEADERS = "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-ID"
CORS_EXPOSED = "ETag, Location, X-Request-ID, X-Position, Retry-After"
CORS_MAX_AGE = "600"
STYLE_BLOCK = re.compile(rb"<style[^>]*>(.*?)</style>", re.DOTALL | re.IGNORECASE)
# Deeper JSON would exhaust the parser's (and the validators') recursion: refused with 400.
MAX_JSON_DEPTH = 64
JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
JSON_BRACKET = re.compile(rb"[\[\]{}]")


def register(app: Flask) -> None:
    @app.before_request
    def assign_request_id() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if 0 < len(given) <= 128 and given.isprintable() else str(uuid4())

    @app.before_request
    def refuse_hostile() -> Response | None:
        """Refuse what no handler could use: NUL in the URL, JSON nested too deeply."""
        if "\x00" in request.path:  # no world, branch or entity is named with one
            return problem(404, "Not Found", "nothing here has a name holding a NUL character")
        for name, value in request.args.items(multi=True):
            if "\x00" in name or "\x00" in value:
                field = name.replace("\x00", "\\0")
                errors = {field: ["must not contain NUL characters"]}
                detail = f"{field}: must not contain NUL characters"
                return problem(422, "Validation failed", detail, kind="validation", errors=errors)
        length = request.content_length
        if (
            request.is_json
            and not request.path.endswith("/worlds/import")  # streams its own body
            and length is not None
            and length <= services().config.max_body_bytes
            and json_depth(request.get_data(cache=True)) > MAX_JSON_DEPTH
        ):
            detail = f"arrays and objects may nest at most {MAX_JSON_DEPTH} deep"
            return problem(400, "JSON nested too deeply", detail)
        return None

    @app.before_request
    def preflight() -> Response | None:
        """Answer a CORS preflight from an allowed origin; others go on as usual."""
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        origin = allowed_origin()
        if origin is None:
            return None
        response = Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
        return response

    @app.after_request
    def stamp(response: Response) -> Response:
        headers = response.headers
        headers["X-Request-ID"] = g.get("request_id", "")
        headers["X-Content-Type-Options"] = "nosniff"
        headers.setdefault("Cache-Control", "no-store")
        headers["Content-Security-Policy"] = content_security_policy(response)
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Cross-Origin-Resource-Policy"] = "same-origin"
        if services().config.environment == "production":
            headers["Strict-Transport-Security"] = HSTS
        if services().config.cors_origins:
            response.vary.add("Origin")
            origin = allowed_origin()
            if origin is not None:
                headers["Access-Control-Allow-Origin"] = origin
                headers["Access-Control-Expose-Headers"] = CORS_EXPOSED
        return response


def json_depth(body: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (a bound when it is malformed)."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return 0
    depth = deepest = 0
    for bracket in JSON_BRACKET.findall(JSON_STRING.sub(b"", body)):
        depth += 1 if bracket in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def allowed_origin() -> str | None:
    """The request's Origin if it is one of the configured origins, exactly."""
    origin = request.headers.get("Origin")
    return origin if origin and origin in services().config.cors_origins else None


def content_security_policy(response: Response) -> str:
    """The strict API policy, or for an HTML page one that allows exactly its inline styles."""
    if response.mimetype != "text/html" or response.is_streamed:
        return API_CSP
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(style).digest()).decode() + "'"
        for style in STYLE_BLOCK.findall(response.get_data())
    ]
    return DOCS_CSP.format(styles=" ".join(hashes) or "'none'")
