"""Observability over real HTTP: `/metrics` (all gunicorn workers and the suggestion worker
added up) and JSON log lines that carry the request id from the API into the worker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import requests
from prometheus_client.parser import text_string_to_metric_families

from commands.application import WorldHistory
from tests.e2e.conftest import Server, User
from tests.e2e.support import TIMEOUT, Client, branch_path, new_world

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
HISTOGRAM = "pearl_http_request_duration_seconds_count"
SETTLE_TIMEOUT = 30.0


def scrape(server: Server) -> Samples:
    """Every sample `/metrics` exposes right now, keyed by name and labels."""
    response = requests.get(f"{server.url}/metrics", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when it is not exposed (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def routes(samples: Samples) -> set[str]:
    """The `route` labels of the latency histogram."""
    return {dict(labels)["route"] for name, labels in samples if name == HISTOGRAM}


def log_entries(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a process's log (the other lines, e.g. Celery's banner, skipped)."""
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    return entries


def wait_for_entries(
    path: Path, wanted: Callable[[dict[str, Any]], bool], what: str
) -> list[dict[str, Any]]:
    """The log entries matching `wanted`, waiting (bounded) until there is one."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        found = [entry for entry in log_entries(path) if wanted(entry)]
        if found:
            return found
        assert time.monotonic() < deadline, f"no log line in {path.name} for {what}"
        time.sleep(0.1)


def test_metrics_count_requests_by_route_template_and_commands(
    server: Server, register: Callable[[], User]
) -> None:
    user = register()
    client = Client(server, user)
    request_id = f"metrics-{uuid4().hex}"
    before = scrape(server)

    world = client.create("/worlds", {"name": "Observed"}, X_Request_ID=request_id)
    branch = branch_path(world)
    location = client.create(f"{branch}/locations", {"name": "Harbour", "kind": "city"})
    item = f"{branch}/locations/{location['id']}"
    read = client.get(item, {"min_position": location["position"]})
    assert read.status_code == 200, read.text
    stale = client.patch(item, {"name": "Old harbour"}, If_Match='"999"')
    assert stale.status_code == 412, stale.text
    assert client.get("/no-such-thing").status_code == 404
    assert requests.get(f"{server.url}/healthz", timeout=TIMEOUT).status_code == 200

    after = scrape(server)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    worlds_route = "/api/v1/worlds"
    assert grew(HISTOGRAM, method="POST", route=worlds_route, status="201") >= 1
    item_routes = {r for r in routes(after) if r.endswith("/locations/<uuid:entity_id>")}
    assert item_routes, routes(after)
    (item_route,) = item_routes
    assert item_route.startswith("/api/v1/worlds/<uuid:world_id>/branches/<")
    assert grew(HISTOGRAM, method="GET", route=item_route, status="200") >= 1
    assert grew(HISTOGRAM, method="PATCH", route=item_route, status="412") >= 1
    assert grew(HISTOGRAM, method="GET", route="unmatched", status="404") >= 1
    # Raw paths never become labels; probes and scrapes are not timed.
    assert not any(world["id"] in route for route in routes(after))
    assert not {"/healthz", "/metrics"} & routes(after)

    assert grew("pearl_commands_total", command="CreateWorld", outcome="ok") >= 1
    assert grew("pearl_commands_total", command="AddEntity", outcome="ok") >= 1
    assert grew("pearl_commands_total", command="UpdateEntity", outcome="conflict") >= 1
    # A world (and its main branch) and a location: at least three events.
    assert grew("pearl_events_appended_total") >= 3

    position = value(after, "pearl_projection_position", projection="read_model")
    lag = value(after, "pearl_projection_lag_events", projection="read_model")
    assert position >= location["position"]  # the read above waited for it
    assert lag >= 0
    assert ("pearl_projection_lag_events", frozenset({("projection", "read_model")})) in after

    access = wait_for_entries(
        server.log_dir / "api.log",
        lambda e: e.get("request_id") == request_id and e.get("logger") == "pearl.access",
        "the world's creation",
    )
    (line,) = access
    assert line["process"] == "api"
    assert line["route"] == worlds_route
    assert line["method"] == "POST" and line["status"] == 201
    assert line["user_id"] == user.id
    assert isinstance(line["duration_ms"], float | int) and line["duration_ms"] >= 0
    assert user.token not in (server.log_dir / "api.log").read_text()


def test_a_suggestion_task_logs_and_records_the_request_id(
    server: Server, register: Callable[[], User]
) -> None:
    client = Client(server, register())
    world = new_world(client, "Suggested")
    branch = branch_path(world)
    client.create(f"{branch}/elements", {"kind": "character", "name": "Ada Quill"})
    timeline = client.create(f"{branch}/timelines", {"name": "Reigns"})
    event = {"timeline_id": timeline["id"], "title": "Ada Quill is crowned", "start": {"year": 1}}
    client.create(f"{branch}/timeline-events", event)
    before = scrape(server)

    request_id = f"suggest-{uuid4().hex}"
    asked = client.post(f"{branch}/suggestions", {"kind": "link-mentions"}, X_Request_ID=request_id)
    assert asked.status_code == 202, asked.text
    assert asked.headers["X-Request-ID"] == request_id
    proposal_id = asked.json()["id"]

    worker_lines = wait_for_entries(
        server.log_dir / "worker.log",
        lambda e: e.get("request_id") == request_id and "succeeded" in e.get("message", ""),
        "the suggestion task",
    )
    assert all(e["process"] == "worker" for e in worker_lines)
    assert any(proposal_id in e["message"] for e in worker_lines)

    history = WorldHistory.on_database(server.database_url)
    try:
        recorded: list[Any] = list(history.events.get(UUID(proposal_id)))
    finally:
        history.close()
    assert [type(e).__name__ for e in recorded] == ["ProposalRequested", "ProposalReady"]
    assert {e.meta["correlation_id"] for e in recorded} == {request_id}

    after = scrape(server)
    ready = ("pearl_suggestion_tasks_total", frozenset({("outcome", "ready")}))
    assert after.get(ready, 0.0) - before.get(ready, 0.0) >= 1
