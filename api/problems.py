"""RFC 9457 problem responses: one shape for every error the API gives."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import BadRequest, HTTPException

from commands.branching import MergeConflict
from commands.errors import (
    ConcurrentWrite,
    Conflict,
    DomainError,
    InvalidCommand,
    NotFound,
    StaleVersion,
)
from commands.suggesting import ProposalConflict
from pearl.database_errors import DATABASE_AWAY
from queries.cursors import BadCursor

PROBLEM_TYPE_BASE = "https://space-pearl.dev/problems/"
log = logging.getLogger(__name__)


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = problem_body(status, title, detail, kind=kind, **extra)
    response = Response(
        json.dumps(body), status=status, mimetype="application/problem+json", headers=headers
    )
    return response


def problem_body(
    status: int, title: str, detail: str | None = None, *, kind: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The JSON object of a problem document (`problem` answers it; gunicorn's own refusals
    are written with it too, see `pearl.gunicorn_problems`)."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (kind or _slug(title)),
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


class ApiProblem(Exception):
    """Raised by views for refusals that are not domain decisions (auth, headers, ...)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra
        self.headers = headers


def _slug(title: str) -> str:
    return "-".join(title.lower().split())


def flatten_field_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn webargs/marshmallow nested messages into `{"field.sub": ["msg", ...]}`."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name: str
            if key in ("json", "query", "headers", "form", "files") and not prefix:
                name = "" if key == "json" else prefix
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix or "body"
            for field, msgs in flatten_field_errors(value, name).items():
                flat.setdefault(field, []).extend(msgs)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "body"] = list(messages)
    elif isinstance(messages, list):
        for item in messages:
            for field, msgs in flatten_field_errors(item, prefix).items():
                flat.setdefault(field, []).extend(msgs)
    else:
        flat[prefix or "body"] = [str(messages)]
    return flat


def from_domain(error: DomainError) -> Response:
    if isinstance(error, InvalidCommand):
        return problem(422, error.title, error.detail, kind="validation", errors=error.errors)
    if isinstance(error, NotFound):
        return problem(404, error.title, error.detail, kind="not-found")
    if isinstance(error, StaleVersion):
        return problem(
            412, error.title, error.detail, kind="stale-version", current_version=error.actual
        )
    if isinstance(error, MergeConflict):
        return problem(
            409,
            "Merge conflict",
            error.detail,
            kind="merge-conflict",
            conflicts=error.conflicts,
            **error.extra,
        )
    if isinstance(error, ProposalConflict):
        return problem(
            409,
            "Proposal no longer applies",
            error.detail,
            kind="proposal-conflict",
            conflicts=error.conflicts,
        )
    if isinstance(error, Conflict):
        extra: dict[str, Any] = {"references": error.references} if error.references else {}
        return problem(409, error.title, error.detail, kind="conflict", **extra)
    if isinstance(error, ConcurrentWrite):
        return problem(
            409, error.title, error.detail, kind="concurrent-write", headers={"Retry-After": "1"}
        )
    return problem(400, error.title, error.detail)


def from_http(error: HTTPException) -> Response:
    status = error.code or 500
    if status == 422:
        data = getattr(error, "data", None) or {}
        errors = flatten_field_errors(data.get("messages", {}))
        detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()) or None
        return problem(422, "Validation failed", detail, kind="validation", errors=errors)
    if status == 400 and request.mimetype == "application/json":
        try:
            request.get_json(force=True, cache=True)
        except BadRequest:
            return problem(400, "Malformed JSON", "the request body is not valid JSON")
    headers = dict(error.get_headers()) if status == 405 else None
    if headers:
        headers.pop("Content-Type", None)
    return problem(status, error.name, error.description, headers=headers)


def register(app: Flask) -> None:
    """Map every error to a problem response; nothing leaks a stack trace."""
    app.register_error_handler(DomainError, from_domain)
    app.register_error_handler(
        BadCursor,
        lambda e: problem(
            422, "Validation failed", str(e), kind="validation", errors={"cursor": [str(e)]}
        ),
    )
    app.register_error_handler(HTTPException, from_http)
    app.register_error_handler(
        ApiProblem,
        lambda e: problem(e.status, e.title, e.detail, headers=e.headers, **e.extra),
    )

    def database_away(error: Exception) -> Response:
        kind = type(error)
        log.warning("database unavailable: %s.%s: %s", kind.__module__, kind.__name__, error)
        return problem(
            503,
            "Service unavailable",
            "the database is not reachable right now; retry shortly",
            kind="database-unavailable",
            headers={"Retry-After": "5"},
        )

    for away in DATABASE_AWAY:
        app.register_error_handler(away, database_away)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return problem(500, "Internal Server Error", "the server failed to handle this request")
