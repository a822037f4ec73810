"""The suggestion worker's own `/metrics`, for deployments where it shares no directory with
the API (one container each): `WORKER_METRICS_PORT` starts a Prometheus endpoint in the
worker's main process. Its pool processes write their samples to `PROMETHEUS_MULTIPROC_DIR`
when that is set, and the endpoint adds them up; otherwise it serves its own registry.
Under `pearl up` the API's `/metrics` already includes the worker, so the port stays unset.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server


def registry() -> CollectorRegistry:
    """What the endpoint serves: every process's samples in multiprocess mode."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
    return combined


def start(port: int, address: str = "0.0.0.0") -> Any:
    """Serve `/metrics` on `address:port` from a daemon thread; returns the server."""
    server, _thread = start_http_server(port, addr=address, registry=registry())
    return server


def start_from_env() -> Any:
    """Start the endpoint when `WORKER_METRICS_PORT` is set (address: `WORKER_METRICS_HOST`)."""
    port = os.environ.get("WORKER_METRICS_PORT", "")
    if not port:
        return None
    return start(int(port), os.environ.get("WORKER_METRICS_HOST", "0.0.0.0"))
