"""Operations endpoints at the root, the OpenAPI document, and generic HTTP behaviour."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.e2e.conftest import Server
from tests.e2e.support import TIMEOUT, assert_problem, media_type

BASE = "/api/v1"
W = BASE + "/worlds/{world_id}"
B = W + "/branches/{branch}"

# (path, methods) of DESIGN section 5 that exist so far, path parameters by any name
DOCUMENTED: list[tuple[str, set[str]]] = [
    (BASE + "/auth/register", {"post"}),
    (BASE + "/auth/token", {"post"}),
    (BASE + "/auth/refresh", {"post"}),
    (BASE + "/me", {"get"}),
    (BASE + "/worlds", {"get", "post"}),
    (W, {"get", "patch"}),
    (W + "/members", {"get"}),
    (W + "/members/{user_id}", {"put", "delete"}),
    (W + "/branches", {"get"}),
    (B, {"get"}),
    *[
        path
        for collection in ("locations", "elements", "timelines", "timeline-events")
        for path in (
            (f"{B}/{collection}", {"get", "post"}),
            (f"{B}/{collection}/{{id}}", {"get", "patch", "delete"}),
        )
    ],
    (B + "/timelines/{id}/events", {"get"}),
    (B + "/search", {"get"}),
]


def _shape(path: str) -> str:
    """A path with every `{parameter}` made anonymous, to compare templates."""
    out, depth = [], 0
    for char in path:
        if char == "{":
            depth += 1
            out.append("{}")
        elif char == "}":
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)


@pytest.fixture(scope="module")
def spec(server: Server) -> dict[str, Any]:
    response = requests.get(f"{server.url}/openapi.json", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert media_type(response) == "application/json"
    body: dict[str, Any] = response.json()
    return body


class TestHealth:
    def test_healthz_answers_200(self, server: Server) -> None:
        response = requests.get(f"{server.url}/healthz", timeout=TIMEOUT)
        assert response.status_code == 200, response.text

    def test_readyz_answers_200_json(self, server: Server) -> None:
        response = requests.get(f"{server.url}/readyz", timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        assert media_type(response) == "application/json"
        assert isinstance(response.json(), dict)

    def test_readyz_reports_database_redis_and_projection_lag(self, server: Server) -> None:
        body = requests.get(f"{server.url}/readyz", timeout=TIMEOUT).json()
        text = " ".join(_keys(body)).lower()
        assert "database" in text, body
        assert "redis" in text, body
        assert "lag" in text, body


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value] + [k for v in value.values() for k in _keys(v)]
    return []


class TestOpenApi:
    def test_the_document_is_openapi_3(self, spec: dict[str, Any]) -> None:
        assert str(spec["openapi"]).startswith("3.")
        assert spec["info"]["title"]
        assert spec["info"]["version"]

    @pytest.mark.parametrize(
        ("path", "methods"), DOCUMENTED, ids=[f"{p} {sorted(m)}" for p, m in DOCUMENTED]
    )
    def test_every_endpoint_of_the_design_is_documented(
        self, spec: dict[str, Any], path: str, methods: set[str]
    ) -> None:
        documented = {_shape(p): operations for p, operations in spec["paths"].items()}
        assert _shape(path) in documented, sorted(spec["paths"])
        assert methods <= set(documented[_shape(path)]), documented[_shape(path)].keys()

    def test_the_document_declares_bearer_authentication(self, spec: dict[str, Any]) -> None:
        schemes = spec["components"]["securitySchemes"]
        assert any(
            s.get("type") == "http" and s.get("scheme", "").lower() == "bearer"
            for s in schemes.values()
        ), schemes

    def test_docs_is_an_html_page_pointing_at_the_document(self, server: Server) -> None:
        response = requests.get(f"{server.url}/docs", timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        assert media_type(response) == "text/html"
        assert "/openapi.json" in response.text


class TestGenericHttp:
    @pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/api/v2/worlds"])
    def test_an_unknown_path_is_a_404_problem(self, server: Server, path: str) -> None:
        assert_problem(requests.get(f"{server.url}{path}", timeout=TIMEOUT), 404)

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("DELETE", "/api/v1/auth/register"),
            ("GET", "/api/v1/auth/token"),
            ("PUT", "/api/v1/me"),
            ("POST", "/healthz"),
        ],
    )
    def test_a_wrong_method_is_a_405_problem(self, server: Server, method: str, path: str) -> None:
        response = requests.request(method, f"{server.url}{path}", timeout=TIMEOUT)
        assert_problem(response, 405)
        assert response.headers.get("Allow"), response.headers

    def test_a_405_under_a_world_is_a_problem_too(self, server: Server) -> None:
        response = requests.delete(
            f"{server.api}/worlds/00000000-0000-0000-0000-000000000000", timeout=TIMEOUT
        )
        assert_problem(response, 405)

    def test_a_given_request_id_is_echoed(self, server: Server) -> None:
        for path in ("/healthz", "/api/v1/nope"):
            response = requests.get(
                f"{server.url}{path}", headers={"X-Request-ID": "trace-42"}, timeout=TIMEOUT
            )
            assert response.headers.get("X-Request-ID") == "trace-42"

    def test_a_request_id_is_made_up_when_none_is_given(self, server: Server) -> None:
        first = requests.get(f"{server.url}/healthz", timeout=TIMEOUT)
        second = requests.get(f"{server.url}/healthz", timeout=TIMEOUT)
        assert first.headers.get("X-Request-ID")
        assert first.headers["X-Request-ID"] != second.headers.get("X-Request-ID")

    def test_responses_forbid_content_sniffing(self, server: Server) -> None:
        for path in ("/healthz", "/openapi.json", "/nope"):
            response = requests.get(f"{server.url}{path}", timeout=TIMEOUT)
            assert response.headers.get("X-Content-Type-Options") == "nosniff", path
