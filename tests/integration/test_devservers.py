"""The embedded servers: they answer, and they fail clearly."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from pearl.devservers import start_postgres, start_redis
from pearl.processes import DevServerError, PortInUseError, free_port


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other process is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def redis_command(url: str, command: bytes) -> bytes:
    parsed = make_url(url)
    assert parsed.host and parsed.port
    with socket.create_connection((parsed.host, parsed.port), timeout=5) as sock:
        sock.sendall(command + b"\r\n")
        return sock.recv(64)


def test_redis_on_a_taken_port_fails_with_one_clear_line(tmp_path: Path, taken_port: int) -> None:
    with pytest.raises(PortInUseError) as raised:
        start_redis(tmp_path, taken_port)
    message = str(raised.value)
    assert "\n" not in message
    assert f"127.0.0.1:{taken_port} is already in use" in message
    assert "Redis" in message


def test_postgres_on_a_taken_port_fails_before_initdb(tmp_path: Path, taken_port: int) -> None:
    with pytest.raises(PortInUseError, match="already in use"):
        start_postgres(tmp_path, taken_port)
    assert not (tmp_path / "postgres" / "PG_VERSION").exists()


def test_a_server_that_exits_while_starting_reports_its_log(tmp_path: Path) -> None:
    with pytest.raises(DevServerError) as raised:
        start_redis(tmp_path, free_port(), extra_args=["--no-such-directive", "1"])
    message = str(raised.value)
    assert "\n" not in message
    assert "exited with code" in message
    assert "no-such-directive" in message  # from the tail of redis-server's own log


def test_embedded_redis_answers_ping(redis_url: str) -> None:
    assert redis_command(redis_url, b"PING") == b"+PONG\r\n"


def test_postgres_answers_select_1(database_url: str) -> None:
    parsed = make_url(database_url)
    with (
        psycopg2.connect(
            host=parsed.host,
            port=parsed.port,
            user=parsed.username,
            password=parsed.password,
            dbname=parsed.database,
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("select 1")
        assert cur.fetchone() == (1,)
    conn.close()


def test_a_stopped_server_is_gone(tmp_path: Path) -> None:
    server = start_redis(tmp_path, free_port())
    assert server.stop() == 0
    assert server.exit_code() == 0
    assert server.stop() == 0  # stopping twice is harmless
