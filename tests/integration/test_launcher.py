"""The launcher's parts: gunicorn started and stopped, supervision of named children.

A stand-in WSGI app keeps these tests independent of the API; the e2e tests run the real one.
"""

from __future__ import annotations

import socket
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pearl.launcher import Supervisor, start_api_server
from pearl.processes import DevServerError, PortInUseError, free_port

STAND_IN_APP = """
import os

def app(environ, start_response):
    if environ["PATH_INFO"] == "/healthz":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [os.environ["DATABASE_URL"].encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no"]
"""


@pytest.fixture
def app_env(tmp_path: Path) -> dict[str, str]:
    """Environment in which `standin:app` is importable."""
    (tmp_path / "standin.py").write_text(STAND_IN_APP)
    (tmp_path / "broken.py").write_text("raise RuntimeError('cannot boot')\n")
    return {"PYTHONPATH": str(tmp_path)}


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other process is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_api_server_serves_until_stopped(app_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    url = "postgresql+psycopg2://nobody@127.0.0.1:1/none"
    log = tmp_path / "gunicorn.log"
    with start_api_server(url, port, env=app_env, app="standin:app", log_path=log) as server:
        assert server.url == f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(server.url + "/healthz", timeout=5) as response:
            assert response.read().decode() == url
    assert server.exit_code() == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url + "/healthz", timeout=2)


def test_api_server_on_a_taken_port_fails_clearly(app_env: dict[str, str], taken_port: int) -> None:
    with pytest.raises(PortInUseError, match=f"127.0.0.1:{taken_port} is already in use"):
        start_api_server("postgresql://x", taken_port, env=app_env, app="standin:app")


def test_an_app_that_cannot_boot_is_reported(app_env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "gunicorn.log"
    with pytest.raises(DevServerError) as raised:
        start_api_server("postgresql://x", free_port(), env=app_env, app="broken:app", log_path=log)
    assert "exited with code" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_supervisor_reports_the_child_that_died_and_stops_the_rest() -> None:
    supervisor = Supervisor()
    sleeper = supervisor.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    quitter = supervisor.spawn("quitter", [sys.executable, "-c", "raise SystemExit(3)"])
    try:
        dead = supervisor.watch(interval=0.05)
        assert dead is quitter
        assert dead.exit_code() == 3
    finally:
        supervisor.stop_all(timeout=5)
    assert sleeper.exit_code() is not None
    assert supervisor.children == []
