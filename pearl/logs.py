"""Logging for every process: one JSON object per line, stamped with the request id.

`configure_logging(role)` is called once by each process (the API under gunicorn, the
projector, the Celery worker). `LOG_FORMAT=json` (the default) writes one JSON object per line
to stderr; `LOG_FORMAT=text` writes a readable line for people. `LOG_LEVEL` (default INFO)
overrides the level a process asks for.

The request id lives in a `ContextVar`: the API binds it per request, the worker per task, and
a filter on the handler copies it onto every record (`record.request_id`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(role)s %(name)s [%(request_id)s] %(message)s"

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has: whatever else a record carries came from `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "role",
}


def current_request_id() -> str | None:
    """The request id of the request or task being handled, if any."""
    return _request_id.get()


def bind_request_id(request_id: str | None) -> Token[str | None]:
    """Make `request_id` current; undo with `reset_request_id(token)`."""
    return _request_id.set(request_id or None)


def reset_request_id(token: Token[str | None]) -> None:
    _request_id.reset(token)


@contextmanager
def request_id_bound(request_id: str | None) -> Iterator[None]:
    """Log every line inside the block with `request_id`."""
    token = bind_request_id(request_id)
    try:
        yield
    finally:
        reset_request_id(token)


class RequestIdFilter(logging.Filter):
    """Copies the current request id (and the process role) onto each record."""

    def __init__(self, role: str = "") -> None:
        super().__init__()
        self.role = role

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        record.role = self.role
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, process, pid, request_id,
    exc, and the record's `extra=` fields (values JSON cannot hold become strings)."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC)
        payload: dict[str, Any] = {
            "ts": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": self.role,
            "pid": record.process,
        }
        request_id = getattr(record, "request_id", None) or _request_id.get()
        if request_id:
            payload["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in payload:
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exc"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """A line for people: time, level, role, logger, [request id], message."""

    def __init__(self, role: str) -> None:
        super().__init__(TEXT_FORMAT)
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        record.role = self.role
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get() or "-"
        return super().format(record)


def log_format() -> str:
    """`LOG_FORMAT` (json or text; json when unset)."""
    chosen = (os.environ.get("LOG_FORMAT") or "json").strip().lower()
    if chosen not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {chosen!r}")
    return chosen


def log_level(default: str | int | None = None) -> int:
    """`LOG_LEVEL` if set, else `default`, else INFO, as a logging level number."""
    chosen: str | int = os.environ.get("LOG_LEVEL") or default or "INFO"
    if isinstance(chosen, int):
        return chosen
    number = logging.getLevelName(chosen.strip().upper())
    if not isinstance(number, int):
        raise ValueError(f"LOG_LEVEL must be a logging level such as INFO, not {chosen!r}")
    return number


def make_formatter(role: str) -> logging.Formatter:
    """The formatter `LOG_FORMAT` asks for."""
    return TextFormatter(role) if log_format() == "text" else JsonFormatter(role)


def configure_logging(role: str, level: str | int | None = None) -> logging.Handler:
    """Send every log record of this process to stderr in `LOG_FORMAT`, as `role`.

    Replaces the root logger's handlers, so calling it again (or after a library set up
    logging) leaves exactly one handler. Returns that handler.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(role))
    handler.addFilter(RequestIdFilter(role))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(log_level(level))
    return handler
