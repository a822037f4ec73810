"""Requests gunicorn refuses before they reach the app, over a raw socket: each answer is a
problem document with gunicorn's status, the connection closes, and the server goes on."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.conftest import Server
from tests.e2e.support import PROBLEM_TYPE, TIMEOUT

CASES = [
    ("request-line-too-long", b"GET /api/v1/worlds?q=" + b"a" * 9000 + b" HTTP/1.1\r\n", 414),
    ("header-too-long", b"GET /healthz HTTP/1.1\r\nX-Long: " + b"a" * 9000 + b"\r\n", 431),
    (
        "too-many-headers",
        b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-N%d: 1\r\n" % i for i in range(120)),
        431,
    ),
    ("bad-method", b"G@T /healthz HTTP/1.1\r\n", 400),
    ("bad-version", b"GET /healthz HTTP/9.9\r\n", 400),
    ("bad-header-name", b"GET /healthz HTTP/1.1\r\nBad Name: 1\r\n", 400),
    ("binary-request-line", b"\x00\x01\x02 <script>\r\n", 400),
]


def exchange(server: Server, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` (then the blank line ending its headers) and read until the server
    closes: (status, headers by lower-case name, body)."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=TIMEOUT) as sock:
        sock.sendall(request + b"Host: localhost\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):  # gunicorn closes after a refusal
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_request_gunicorn_cannot_take_is_a_problem_document(
    server: Server, request_bytes: bytes, status: int
) -> None:
    answered, headers, body = exchange(server, request_bytes)
    assert answered == status, body
    assert headers["content-type"] == PROBLEM_TYPE
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    problem: dict[str, Any] = json.loads(body)
    assert problem["status"] == status
    assert problem["type"].startswith("https://") and problem["title"] and problem["detail"]
    assert b"<html" not in body.lower(), "gunicorn's HTML page, not a problem document"
    assert requests.get(f"{server.url}/healthz", timeout=TIMEOUT).status_code == 200
