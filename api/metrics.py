"""Prometheus metrics of the API: request latency, commands, events, projection lag.

Under gunicorn the launcher sets `PROMETHEUS_MULTIPROC_DIR`: every process (API workers and
the suggestion worker alike) writes its samples there and `/metrics` adds them up. Without it
(a Flask test client, say) the process's own default registry is served.

`/metrics` needs no token and shows no world data, but it should not be reachable from the
internet: expose it only to the scraper (the reverse proxy should not route it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

from flask import Flask, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text

from api.ops import LAG_QUERY
from api.services import services
from commands.application import Outcome
from commands.errors import ConcurrentWrite, Conflict, DomainError, StaleVersion
from commands.messages import Command

log = logging.getLogger(__name__)

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Probes and scrapes are frequent and trivial: neither timed nor logged at INFO.
UNOBSERVED = frozenset({"/healthz", "/metrics"})
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUEST_SECONDS = Histogram(
    "pearl_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status.",
    ["method", "route", "status"],
    buckets=BUCKETS,
)
COMMANDS = Counter(
    "pearl_commands",
    "Commands the API executed, by command and outcome (ok, conflict, invalid, error).",
    ["command", "outcome"],
)
EVENTS = Counter("pearl_events_appended", "Events the API's commands appended to the store.")

Execute = Callable[[Command], Outcome]


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    """Record one answered request; `route` is the URL rule template (None: unmatched)."""
    label = method if method in METHODS else "OTHER"
    REQUEST_SECONDS.labels(label, route or UNMATCHED, str(status)).observe(seconds)


def command_outcome(error: BaseException | None) -> str:
    """The `outcome` label of a command that raised `error` (None: it succeeded)."""
    if error is None:
        return "ok"
    if isinstance(error, (Conflict, StaleVersion, ConcurrentWrite)):
        return "conflict"
    if isinstance(error, DomainError):
        return "invalid"  # broken invariants, unknown targets: the caller's command is refused
    return "error"


def counted(execute: Execute) -> Execute:
    """Count each command `execute` handles by outcome, and the events it appended."""

    @wraps(execute)
    def counting(command: Command) -> Outcome:
        name = type(command).__name__
        try:
            outcome = execute(command)
        except BaseException as error:
            COMMANDS.labels(name, command_outcome(error)).inc()
            raise
        COMMANDS.labels(name, "ok").inc()
        if outcome.events:
            EVENTS.inc(outcome.events)
        return outcome

    return counting


class ProjectionCollector(Collector):
    """Position and lag of the read model, read from the database at scrape time (the same
    numbers `/readyz` reports). Nothing is reported when the database does not answer."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            with self.engine.connect() as conn:
                head, position = conn.execute(text(LAG_QUERY)).one()
        except Exception as error:  # a scrape must not fail because the database is away
            log.warning("projection metrics unavailable: %s", type(error).__name__)
            return
        labels = ["projection"]
        lag = GaugeMetricFamily(
            "pearl_projection_lag_events", "Events recorded but not yet projected.", labels=labels
        )
        lag.add_metric(["read_model"], int(head) - int(position))
        at = GaugeMetricFamily(
            "pearl_projection_position",
            "Position in the event log the projection has applied up to.",
            labels=labels,
        )
        at.add_metric(["read_model"], int(position))
        yield lag
        yield at


class _Forward(Collector):
    """Everything a registry collects (this process's metrics in single-process mode)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


def scrape(engine: Engine) -> bytes:
    """The text exposition of all processes' metrics plus the projection gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(ProjectionCollector(engine))
    return generate_latest(registry)


def register(app: Flask) -> None:
    from api import request_log

    request_log.register(app, observe_request, UNOBSERVED)

    @app.get("/metrics")
    def metrics() -> Any:
        """Prometheus metrics (text format). Not for the public internet."""
        return Response(scrape(services().reads), content_type=CONTENT_TYPE_LATEST)
