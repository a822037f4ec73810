"""gunicorn's own refusals, written as problem documents."""

from __future__ import annotations

import json
import socket

import pytest
from gunicorn import util

from pearl import gunicorn_problems
from pearl.gunicorn_problems import DETAIL_MAX, NO_DETAIL, problem_bytes


def split(response: bytes) -> tuple[list[str], dict[str, object]]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(x.split(":")[1]) for x in lines if x.startswith("Content-Length:"))
    assert length == len(body)
    return lines, json.loads(body)


def test_the_status_line_and_headers_are_gunicorns_and_the_body_a_problem() -> None:
    lines, body = split(
        problem_bytes(414, "URI Too Long", "Request Line is too large (9000 > 4094)")
    )
    assert lines[0] == "HTTP/1.1 414 URI Too Long"
    assert "Connection: close" in lines and "Content-Type: application/problem+json" in lines
    assert body == {
        "type": "https://space-pearl.dev/problems/uri-too-long",
        "title": "URI Too Long",
        "status": 414,
        "detail": "Request Line is too large (9000 > 4094)",
    }


def test_an_empty_message_gets_a_detail_and_a_long_one_is_cut() -> None:
    assert split(problem_bytes(500, "Internal Server Error", ""))[1]["detail"] == NO_DETAIL
    detail = split(problem_bytes(400, "Bad Request", "x" * 5000))[1]["detail"]
    assert isinstance(detail, str) and len(detail) == DETAIL_MAX and detail.endswith("…")


def test_request_bytes_quoted_in_the_message_stay_inside_the_json() -> None:
    message = "Invalid request line '\x00\r\n<script>\u202e'"
    raw = problem_bytes(400, "Bad Request", message)
    assert raw.count(b"\r\n\r\n") == 1 and b"<script>" in raw  # escaped, not cut loose
    assert split(raw)[1]["detail"] == message


def test_install_puts_the_writer_in_gunicorns_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(util, "write_error", util.write_error)  # restored after the test
    gunicorn_problems.install()
    left, right = socket.socketpair()
    with left, right:
        util.write_error(left, 431, "Request Header Fields Too Large", "too many")
        left.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := right.recv(4096):
            received += chunk
    lines, body = split(received)
    assert lines[0] == "HTTP/1.1 431 Request Header Fields Too Large"
    assert body["status"] == 431 and body["detail"] == "too many"


def test_install_refuses_a_gunicorn_without_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(util, "write_error")
    with pytest.raises(RuntimeError, match="write_error"):
        gunicorn_problems.install()
