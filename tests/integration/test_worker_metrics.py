"""The suggestion worker's own `/metrics` endpoint (WORKER_METRICS_PORT), scraped over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from pearl.processes import free_port

# A pool process counts two outcomes into the multiprocess directory and exits; then the
# "main process" starts the endpoint from the environment, as the worker_init signal does.
CHILD = """
import multiprocessing, time
def count():
    from suggestions.tasks import TASKS
    TASKS.labels("ready").inc(2)
p = multiprocessing.get_context("fork").Process(target=count)
p.start(); p.join()
from suggestions import metrics_server
assert metrics_server.start_from_env() is not None
time.sleep(30)
"""


def scrape(url: str, deadline: float) -> str:
    while True:
        try:
            return requests.get(url, timeout=2).text
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_worker_endpoint_adds_up_its_pool_processes(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "WORKER_METRICS_PORT": str(port),
        "WORKER_METRICS_HOST": "127.0.0.1",
    }
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env)
    try:
        body = scrape(f"http://127.0.0.1:{port}/metrics", time.monotonic() + 20)
    finally:
        child.kill()
        child.wait()
    assert 'pearl_suggestion_tasks_total{outcome="ready"} 2.0' in body


def test_no_port_no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from suggestions import metrics_server

    monkeypatch.delenv("WORKER_METRICS_PORT", raising=False)
    assert metrics_server.start_from_env() is None
