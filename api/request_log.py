"""One access log line per request, and the request id bound for every log line in between.

The clock starts on Flask's `request_started` signal, before any `before_request` hook (one
may answer on its own, e.g. a CORS preflight). The request id is bound in a `before_request`
hook registered after `api.requests`, which assigns `g.request_id`.

The access line carries method, route template, path, status, duration_ms and the user id
when the request was authenticated: never headers, query strings or bodies (tokens,
passwords).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from flask import Flask, Response, g, request, request_started

from pearl.logs import bind_request_id, reset_request_id

log = logging.getLogger("pearl.access")

Observe = Callable[[str, str | None, int, float], None]


def register(app: Flask, observe: Observe, unobserved: Collection[str] = ()) -> None:
    """Bind the request id, time each request, log it and hand it to `observe`
    (method, route template or None, status, seconds). Paths in `unobserved` are neither
    observed nor logged at INFO."""

    def start_clock(sender: Flask, **_: Any) -> None:
        g.observed_since = time.perf_counter()

    request_started.connect(start_clock, app, weak=False)

    @app.before_request
    def bind() -> None:
        g.request_id_token = bind_request_id(g.get("request_id"))

    @app.after_request
    def finish(response: Response) -> Response:
        started: float = g.get("observed_since", time.perf_counter())
        seconds = time.perf_counter() - started
        rule = request.url_rule.rule if request.url_rule is not None else None
        quiet = request.path in unobserved
        if not quiet:
            observe(request.method, rule, response.status_code, seconds)
        user_id = g.get("user_id")
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "%s %s %d",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "route": rule or "unmatched",
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "request_id": g.get("request_id"),
                **({"user_id": user_id} if user_id else {}),
            },
        )
        return response

    @app.teardown_request
    def unbind(_: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            with contextlib.suppress(ValueError):  # torn down in another context
                reset_request_id(token)
