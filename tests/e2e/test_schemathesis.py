"""Schemathesis over the whole spec, briefly: no 5xx, no response that breaks its own schema.

A few generated cases per operation (valid and invalid ones, derandomized so a run repeats),
as the owner of a prepared world. `python -m tests.soak.hostile` is the long version.
"""

from __future__ import annotations

import json

import requests
import schemathesis
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.e2e.conftest import Server
from tests.soak.hostile import CHECKS, fuzz, prepare

EXAMPLES = 6  # per operation: about 300 cases, well under 90 s on two cores


def test_generated_requests_never_break_the_server_or_the_schema(server: Server) -> None:
    report = fuzz(server.url, prepare(server.api), examples=EXAMPLES)
    counts = report.counts()
    print(counts, dict(report.statuses))
    assert report.examples == [], "\n\n".join(report.examples)
    assert counts["server_errors"] == 0 and counts["schema_violations"] == 0
    assert counts["cases"] >= 49 * EXAMPLES // 2
    # Most cases reach past authorisation and validation to real resources.
    assert counts["operations_reached"] >= 35, sorted(report.reached)
    assert report.refused == set()  # the owner's token is good for everything


def test_the_schema_check_catches_a_response_that_breaks_the_spec(server: Server) -> None:
    """The checks are live: a made-up answer that contradicts the spec is caught."""
    schema = schemathesis.openapi.from_url(
        f"{server.url}/openapi.json", config=schemathesis.Config()
    )
    operation = schema["/api/v1/auth/token"]["POST"]
    case = operation.Case(body={"email": "a@example.com", "password": "x"})
    for status, body, media in [
        (200, {"access_token": 42}, "application/json"),
        (422, {"title": "no type or status"}, "application/problem+json"),
    ]:
        fake = requests.Response()
        fake.status_code = status
        fake._content = json.dumps(body).encode()
        fake.headers["Content-Type"] = media
        fake.url = f"{server.api}/auth/token"
        fake.request = requests.Request("POST", fake.url).prepare()
        try:
            case.validate_response(fake, checks=[response_schema_conformance])
        except (AssertionError, BaseExceptionGroup):
            continue
        raise AssertionError(f"a {status} answer {body} passed the schema check")
    assert response_schema_conformance in CHECKS
