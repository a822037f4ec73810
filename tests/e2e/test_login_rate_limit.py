"""`POST /auth/token` is rate limited per username (failures) and per client IP (attempts).

A server of its own with small limits, so the limits are reached in a few requests. Requests
leave from different loopback addresses (127.0.0.x) to stand for different clients.
"""

from __future__ import annotations

import http.client
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import pytest
from flask import Flask

from api.problems import ApiProblem
from api.ratelimit import LoginLimiter, client_ip
from pearl.config import Config
from pearl.launcher import start_api_server
from pearl.processes import ManagedProcess, free_port
from tests.e2e.conftest import JWT_SECRET, PASSWORD

MAX_FAILURES = 3
MAX_ATTEMPTS = 6
WINDOW = 120


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Limited:
    process: ManagedProcess

    def post(self, path: str, body: dict[str, Any], ip: str, request_id: str = "") -> Answer:
        """POST JSON to `/api/v1{path}` from the loopback address `ip`."""
        where = urlsplit(self.process.url)
        conn = http.client.HTTPConnection(
            where.hostname or "127.0.0.1", where.port, timeout=10, source_address=(ip, 0)
        )
        headers = {"Content-Type": "application/json"}
        if request_id:
            headers["X-Request-ID"] = request_id
        try:
            conn.request("POST", "/api/v1" + path, json.dumps(body), headers)
            response = conn.getresponse()
            raw = response.read()
            return Answer(response.status, dict(response.getheaders()), json.loads(raw or b"{}"))
        finally:
            conn.close()

    def account(self) -> str:
        email = f"limited-{uuid4().hex[:12]}@example.com"
        body = {"email": email, "password": PASSWORD, "display_name": "Limited"}
        assert self.post("/auth/register", body, "127.0.0.1").status == 201
        return email

    def login(self, email: str, password: str, ip: str, request_id: str = "") -> Answer:
        return self.post("/auth/token", {"email": email, "password": password}, ip, request_id)

    def wait_for_log(self, needle: str) -> str:
        """The server's log once it contains `needle` (bounded wait)."""
        deadline = time.monotonic() + 10
        while needle not in (text := self.process.log_text()):
            assert time.monotonic() < deadline, f"{needle!r} never logged"
            time.sleep(0.05)
        return text


@pytest.fixture(scope="module")
def limited(database_url: str, redis_url: str) -> Iterator[Limited]:
    logs = Path(tempfile.mkdtemp(prefix="pearl-ratelimit-"))
    env = {
        "JWT_SECRET": JWT_SECRET,
        "PEARL_DATA_DIR": str(logs),
        "LOGIN_MAX_FAILURES": str(MAX_FAILURES),
        "LOGIN_FAILURE_WINDOW": str(WINDOW),
        "LOGIN_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "LOGIN_ATTEMPT_WINDOW": str(WINDOW),
    }
    with start_api_server(
        database_url, free_port(), redis_url=redis_url, env=env, log_path=logs / "api.log"
    ) as api:
        yield Limited(api)


def assert_too_many(answer: Answer, window: int = WINDOW) -> None:
    assert answer.status == 429, answer
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.body["status"] == 429 and answer.body["detail"]
    assert 0 < int(answer.headers["Retry-After"]) <= window


def test_failures_lock_the_username_and_are_logged_without_the_password(
    limited: Limited,
) -> None:
    email = limited.account()
    ip = "127.0.0.11"
    wrong = [f"Wrong-{uuid4().hex}" for _ in range(MAX_FAILURES)]
    ids = [f"rl-{uuid4().hex}" for _ in wrong]
    for password, request_id in zip(wrong, ids, strict=True):
        assert limited.login(email.upper(), password, ip, request_id).status == 401
    # Even the right password is refused now (and other letter case is the same username).
    assert_too_many(limited.login(email, PASSWORD, "127.0.0.12", "rl-locked"))
    other = limited.account()
    assert limited.login(other, PASSWORD, ip).status == 200  # only that username

    log = limited.wait_for_log("rl-locked")
    for request_id in ids:
        line = next(line for line in log.splitlines() if request_id in line)
        assert email in line and ip in line and "wrong email or password" in line, line
    locked = next(line for line in log.splitlines() if "rl-locked" in line)
    assert "rate limited" in locked and "127.0.0.12" in locked, locked
    for password in (*wrong, PASSWORD):
        assert password not in log


def test_a_successful_login_clears_the_failures(limited: Limited) -> None:
    email = limited.account()
    ip = "127.0.0.21"
    for _ in range(MAX_FAILURES - 1):
        assert limited.login(email, "not the password", ip).status == 401
    assert limited.login(email, PASSWORD, ip).status == 200
    for _ in range(MAX_FAILURES):  # a full allowance again
        assert limited.login(email, "not the password", ip).status == 401
    assert_too_many(limited.login(email, "not the password", ip))


def test_attempts_per_address_are_limited(limited: Limited) -> None:
    ip = "127.0.0.31"
    email = limited.account()
    for _ in range(MAX_ATTEMPTS - 1):  # many usernames: a spraying client
        assert limited.login(f"{uuid4().hex}@example.com", "Spray-1234", ip).status == 401
    assert limited.login(email, PASSWORD, ip).status == 200  # attempts, not only failures
    assert_too_many(limited.login(email, PASSWORD, ip))
    assert limited.login(email, PASSWORD, "127.0.0.32").status == 200  # another client


def test_without_redis_the_limits_hold_in_the_process(
    caplog: pytest.LogCaptureFixture, database_url: str
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    config = Config(
        database_url=database_url,
        redis_url=dead,
        jwt_secret=JWT_SECRET,
        login_max_failures=2,
        login_max_attempts=4,
    )
    limiter = LoginLimiter(config)
    with caplog.at_level(logging.WARNING, logger="api.ratelimit"):
        limiter.check("ada@example.com", "10.0.0.1")
        limiter.failed("ada@example.com")
        limiter.check("ada@example.com", "10.0.0.1")
        limiter.failed("ada@example.com")
        with pytest.raises(ApiProblem, match="failed logins") as refused:
            limiter.check("ada@example.com", "10.0.0.2")
        assert refused.value.status == 429
        limiter.succeeded("ada@example.com")
        limiter.check("ada@example.com", "10.0.0.1")  # the 3rd attempt from .1
        limiter.check("bob@example.com", "10.0.0.1")
        with pytest.raises(ApiProblem, match="this address") as flooded:
            limiter.check("carl@example.com", "10.0.0.1")
        assert int((flooded.value.headers or {})["Retry-After"]) > 0
    warnings = [r for r in caplog.records if r.name == "api.ratelimit"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "fall back" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "127.0.0.1"),  # no proxy trusted: the header is ignored
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # a forged entry on the left
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (2, "203.0.113.9", "127.0.0.1"),  # fewer entries than trusted hops
    ],
)
def test_the_client_address_behind_trusted_proxies(
    database_url: str, hops: int, forwarded: str, expected: str
) -> None:
    config = Config(database_url=database_url, jwt_secret=JWT_SECRET, trusted_proxy_hops=hops)
    app = Flask(__name__)
    headers = {"X-Forwarded-For": forwarded}
    with app.test_request_context(headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        assert client_ip(config) == expected
