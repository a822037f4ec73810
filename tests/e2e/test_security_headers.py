"""Security headers on every response, CORS only for configured origins, production mode."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator

import pytest
import requests
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api import create_app
from api.requests import API_CSP, CORS_HEADERS
from pearl.config import Config
from tests.e2e.conftest import Server, User
from tests.e2e.support import TIMEOUT, assert_problem

ALLOWED = "https://writers.example"
CORS_NAMES = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Expose-Headers",
    "Access-Control-Allow-Credentials",
)


def assert_safe_headers(response: requests.Response | TestResponse, csp: str = API_CSP) -> None:
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert headers["X-Request-ID"]


def test_every_kind_of_response_carries_the_headers(server: Server, owner: User) -> None:
    answers = [
        requests.get(f"{server.url}/healthz", timeout=TIMEOUT),
        requests.get(f"{server.url}/openapi.json", timeout=TIMEOUT),
        requests.get(f"{server.api}/me", headers=owner.auth, timeout=TIMEOUT),
        requests.get(f"{server.api}/me", timeout=TIMEOUT),
        requests.get(f"{server.api}/no-such-thing", headers=owner.auth, timeout=TIMEOUT),
        requests.post(f"{server.api}/worlds", json={}, headers=owner.auth, timeout=TIMEOUT),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 401, 404, 422]
    assert_problem(answers[3], 401)
    for answer in answers:
        assert_safe_headers(answer)
        assert "Strict-Transport-Security" not in answer.headers  # development mode
        assert answer.headers["Cache-Control"] == "no-store"


def test_no_cors_headers_when_no_origin_is_configured(server: Server, owner: User) -> None:
    got = requests.get(
        f"{server.api}/me", headers={**owner.auth, "Origin": ALLOWED}, timeout=TIMEOUT
    )
    preflight = requests.options(
        f"{server.api}/me",
        headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"},
        timeout=TIMEOUT,
    )
    assert got.status_code == 200
    assert preflight.status_code != 204
    for response in (got, preflight):
        assert not [name for name in CORS_NAMES if name in response.headers]


def test_docs_page_allows_exactly_its_own_styles(server: Server) -> None:
    page = requests.get(f"{server.url}/docs", timeout=TIMEOUT)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<table>" in page.text and "/auth/token" in page.text
    styles = re.findall(rb"<style[^>]*>(.*?)</style>", page.content, re.DOTALL)
    assert styles, "the page is expected to carry an inline style"
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s).digest()).decode() + "'" for s in styles
    )
    policy = page.headers["Content-Security-Policy"]
    assert policy == (
        f"default-src 'none'; style-src {hashes}; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    assert "script-src" not in policy and "unsafe" not in policy
    assert not re.search(r"<script|<img|<link|<iframe|\son\w+=", page.text, re.IGNORECASE)
    assert page.headers["X-Frame-Options"] == "DENY"


@pytest.fixture(scope="module")
def production(database_url: str) -> Iterator[FlaskClient]:
    """The app in production mode with one allowed origin, served in this process."""
    config = Config(
        database_url=database_url,
        environment="production",
        jwt_secret=secrets.token_urlsafe(48),
        cors_origins=(ALLOWED, "http://localhost:5173"),
    )
    config.check()
    yield create_app(config).test_client()


def test_production_sends_hsts(production: FlaskClient) -> None:
    response = production.get("/healthz")
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert_safe_headers(response)


def test_preflight_from_an_allowed_origin(production: FlaskClient) -> None:
    response = production.options(
        "/api/v1/worlds",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert response.status_code == 204
    assert response.data == b""
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert methods == {"GET", "POST", "PUT", "PATCH", "DELETE"}
    assert response.headers["Access-Control-Allow-Headers"] == CORS_HEADERS
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_actual_request_from_an_allowed_origin(production: FlaskClient) -> None:
    response = production.get("/api/v1/me", headers={"Origin": "http://localhost:5173"})
    assert response.status_code == 401  # CORS does not replace authentication
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"ETag", "Location", "X-Request-ID", "Retry-After"} <= exposed
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://writers.example.evil", "null", ALLOWED + "/"]
)
def test_other_origins_get_no_cors_headers(production: FlaskClient, origin: str) -> None:
    preflight = production.options(
        "/api/v1/worlds", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    actual = production.get("/api/v1/me", headers={"Origin": origin})
    assert preflight.status_code != 204
    for response in (preflight, actual):
        assert not [name for name in CORS_NAMES if name in response.headers], origin
        assert "Origin" in response.headers["Vary"]  # caches must not reuse across origins


@pytest.mark.parametrize("secret", [None, "", "dev-" + "x" * 60, "short-secret"])
def test_production_refuses_a_missing_default_or_weak_secret(
    monkeypatch: pytest.MonkeyPatch, secret: str | None
) -> None:
    monkeypatch.setenv("PEARL_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1/unused")
    if secret is None:
        monkeypatch.delenv("JWT_SECRET", raising=False)
    else:
        monkeypatch.setenv("JWT_SECRET", secret)
    with pytest.raises(ValueError, match="JWT_SECRET"):
        Config.from_env()


def test_production_accepts_a_strong_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    strong = secrets.token_urlsafe(48)
    monkeypatch.setenv("PEARL_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1/unused")
    monkeypatch.setenv("JWT_SECRET", strong)
    monkeypatch.setenv("CORS_ORIGINS", f" {ALLOWED} ,, http://localhost:5173")
    config = Config.from_env()
    assert config.environment == "production" and config.jwt_secret == strong
    assert config.cors_origins == (ALLOWED, "http://localhost:5173")
