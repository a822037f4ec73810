"""The refusals gunicorn writes itself, as RFC 9457 problem documents like every other.

A request gunicorn cannot parse never reaches the app: a request line over its limit (414),
header fields over theirs (431), a malformed line, method, version or header (400). gunicorn
answers those from its worker's `handle_error` through `gunicorn.util.write_error`, which
writes an HTML page. `install` (run by `pearl.gunicorn_conf`) puts `write_problem` in its
place: the same status line, then an `application/problem+json` body with `type`, `title`,
`status` and `detail`, and `Connection: close` as before (gunicorn drops the connection).
`write_error` is that handler's only caller in the pinned gunicorn; `install` fails loudly
should a new version no longer have it.
"""

from __future__ import annotations

import json
from typing import Any

from gunicorn import util

from api.problems import problem_body

DETAIL_MAX = 300  # characters of gunicorn's message kept (it may quote the request)
NO_DETAIL = "the server could not handle the request"


def problem_bytes(status: int, reason: str, message: str) -> bytes:
    """A whole HTTP/1.1 response: `status` as a problem document whose detail is `message`."""
    title = reason.strip() or "Error"
    detail = message.strip() or NO_DETAIL
    if len(detail) > DETAIL_MAX:
        detail = detail[: DETAIL_MAX - 1] + "…"
    body = json.dumps(problem_body(status, title, detail)).encode()  # ASCII: the rest escaped
    head = (
        f"HTTP/1.1 {status} {title}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("latin-1", "replace") + body


def write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """`gunicorn.util.write_error`'s signature, writing a problem document instead."""
    util.write_nonblock(sock, problem_bytes(status_int, reason, mesg))


def install() -> None:
    """Make gunicorn write its own refusals as problem documents (in this process and the
    workers it forks)."""
    if not callable(getattr(util, "write_error", None)):
        raise RuntimeError("gunicorn.util.write_error is gone: pearl.gunicorn_problems needs it")
    util.write_error = write_problem
