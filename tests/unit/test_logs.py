"""The JSON log lines every process writes (pearl/logs.py)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from pearl import logs


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The root logger configured by `configure_logging("api")` into a string buffer."""
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    handler = logs.configure_logging("api")
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        for old in saved_handlers:
            root.addHandler(old)
        root.setLevel(saved_level)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """Each line of the buffer parsed as one JSON object."""
    text = buffer.getvalue()
    assert text.endswith("\n")
    parsed = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(entry, dict) for entry in parsed)
    return parsed


def test_each_record_is_one_json_object_with_the_standard_fields(captured: io.StringIO) -> None:
    logging.getLogger("pearl.test").info("hello %s\nsecond line", "world")
    logging.getLogger("other").warning("careful")
    first, second = lines(captured)
    assert first["message"] == "hello world\nsecond line"
    assert first["level"] == "INFO"
    assert first["logger"] == "pearl.test"
    assert first["process"] == "api"
    assert isinstance(first["pid"], int)
    assert "request_id" not in first
    assert first["ts"].endswith("Z")
    assert datetime.fromisoformat(first["ts"]).utcoffset() is not None
    assert second["level"] == "WARNING" and second["logger"] == "other"


def test_the_bound_request_id_is_on_every_line_until_unbound(captured: io.StringIO) -> None:
    log = logging.getLogger("pearl.test")
    with logs.request_id_bound("req-42"):
        assert logs.current_request_id() == "req-42"
        log.info("inside")
        logging.getLogger("library.deep").error("also inside")
    log.info("outside")
    inside, deep, outside = lines(captured)
    assert inside["request_id"] == "req-42"
    assert deep["request_id"] == "req-42"
    assert "request_id" not in outside
    assert logs.current_request_id() is None


def test_an_exception_is_captured_under_exc(captured: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("pearl.test").exception("it failed")
    (entry,) = lines(captured)
    assert entry["message"] == "it failed"
    assert entry["level"] == "ERROR"
    assert "Traceback" in entry["exc"]
    assert "ValueError: boom" in entry["exc"]


def test_extra_fields_are_kept_and_unserialisable_ones_become_strings(
    captured: io.StringIO,
) -> None:
    ident = UUID("12345678-1234-5678-1234-567812345678")
    extra = {"status": 201, "route": "/api/v1/worlds", "ids": [1, 2], "world": ident}
    logging.getLogger("pearl.access").info("done", extra=extra)
    (entry,) = lines(captured)
    assert entry["status"] == 201
    assert entry["route"] == "/api/v1/worlds"
    assert entry["ids"] == [1, 2]
    assert entry["world"] == str(ident)
    # Standard LogRecord attributes are not repeated as fields.
    assert not {"args", "msg", "levelno", "pathname", "funcName"} & entry.keys()


def test_extras_are_not_filtered_so_callers_must_never_pass_secrets(
    captured: io.StringIO,
) -> None:
    # The formatter does not guess what is secret: a password-like extra is written as given.
    # Our code never passes one (the access log holds method, route, status, ids, durations).
    logging.getLogger("pearl.test").info("login", extra={"password": "hunter2"})
    (entry,) = lines(captured)
    assert entry["password"] == "hunter2"


def test_level_comes_from_log_level_and_filters_lower_records(
    captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "warning")
    assert logs.log_level("DEBUG") == logging.WARNING
    logging.getLogger().setLevel(logs.log_level())
    logging.getLogger("pearl.test").info("dropped")
    logging.getLogger("pearl.test").warning("kept")
    assert [entry["message"] for entry in lines(captured)] == ["kept"]


def test_text_format_is_one_readable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "text")
    formatter = logs.make_formatter("worker")
    record = logging.LogRecord("celery", logging.INFO, __file__, 1, "task %s", ("done",), None)
    with logs.request_id_bound("abc"):
        logs.RequestIdFilter("worker").filter(record)
    line = formatter.format(record)
    assert line.endswith(" INFO worker celery [abc] task done")


def test_unknown_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logs.make_formatter("api")
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    with pytest.raises(ValueError, match="LOG_LEVEL"):
        logs.log_level()
