"""`/metrics` content without gunicorn: the single-process registry, the projection gauges
read from a real database, and how commands are counted (api/metrics.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine, text

from api import metrics
from commands.application import Outcome, WorldHistory
from commands.errors import ConcurrentWrite, Conflict, InvalidCommand, NotFound, StaleVersion
from commands.messages import Command, CreateWorld, RejectProposal
from commands.provenance import Provenance
from pearl.metrics_dir import metrics_env, reset_metrics_dir
from pearl.migrate import upgrade
from tests.conftest import DatabaseFactory

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def database(database_factory: DatabaseFactory) -> str:
    """A database of this module's own: no projector moves its position."""
    url = database_factory("pearl_metrics")
    upgrade(url)
    return url


@pytest.fixture
def engine(database: str) -> Iterator[Engine]:
    engine = create_engine(database)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def parse(exposition: bytes) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition.decode())
        for sample in family.samples
    }


def count(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_labelled_by_template_with_bounded_methods(engine: Engine) -> None:
    histogram = "pearl_http_request_duration_seconds_count"
    before = parse(metrics.scrape(engine))
    metrics.observe_request("GET", None, 404, 0.002)
    metrics.observe_request("BREW", "/api/v1/worlds", 405, 0.002)
    metrics.observe_request("GET", "/api/v1/worlds/<uuid:world_id>", 200, 0.3)
    after = parse(metrics.scrape(engine))
    for labels in (
        {"method": "GET", "route": "unmatched", "status": "404"},
        {"method": "OTHER", "route": "/api/v1/worlds", "status": "405"},
        {"method": "GET", "route": "/api/v1/worlds/<uuid:world_id>", "status": "200"},
    ):
        assert count(after, histogram, **labels) - count(before, histogram, **labels) == 1
    slow = {"method": "GET", "route": "/api/v1/worlds/<uuid:world_id>", "status": "200"}
    bucket = "pearl_http_request_duration_seconds_bucket"
    assert count(after, bucket, **slow, le="0.25") == count(before, bucket, **slow, le="0.25")
    assert count(after, bucket, **slow, le="0.5") - count(before, bucket, **slow, le="0.5") == 1


def test_projection_gauges_are_the_numbers_readyz_uses(database: str, engine: Engine) -> None:
    history = WorldHistory.on_database(database)
    try:
        history.handle(CreateWorld(uuid4(), "owner", "Counted"), Provenance(actor="owner"))
    finally:
        history.close()
    with engine.begin() as conn:
        head = conn.execute(text("SELECT max(id) FROM pearl_events")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO projection_positions (name, position) VALUES ('read_model', 1) "
                "ON CONFLICT (name) DO UPDATE SET position = 1"
            )
        )
    assert head >= 3
    samples = parse(metrics.scrape(engine))
    read_model = {"projection": "read_model"}
    assert count(samples, "pearl_projection_position", **read_model) == 1
    assert count(samples, "pearl_projection_lag_events", **read_model) == head - 1


def test_a_database_that_does_not_answer_leaves_the_gauges_out() -> None:
    away = create_engine("postgresql+psycopg2://nobody@127.0.0.1:1/none")
    try:
        samples = parse(metrics.scrape(away))
    finally:
        away.dispose()
    assert not any(name.startswith("pearl_projection_") for name, _ in samples)
    assert any(name.startswith("pearl_http_request_duration_seconds") for name, _ in samples)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "ok"),
        (Conflict("still referenced"), "conflict"),
        (StaleVersion(1, 2), "conflict"),
        (ConcurrentWrite("lost the race"), "conflict"),
        (InvalidCommand.field("name", "is required"), "invalid"),
        (NotFound("no such world"), "invalid"),
        (RuntimeError("bug"), "error"),
    ],
)
def test_command_outcomes(error: BaseException | None, outcome: str) -> None:
    assert metrics.command_outcome(error) == outcome


def test_counted_commands_and_their_events() -> None:
    def execute_ok(command: Command) -> Outcome:
        return Outcome({"id": "x"}, version=3, position=9, events=2)

    def execute_stale(command: Command) -> Outcome:
        raise StaleVersion(1, 3)

    ok = metrics.COMMANDS.labels("RejectProposal", "ok")
    conflict = metrics.COMMANDS.labels("RejectProposal", "conflict")
    before = ok._value.get(), conflict._value.get(), metrics.EVENTS._value.get()
    command = RejectProposal(uuid4(), uuid4())
    assert metrics.counted(execute_ok)(command).position == 9
    with pytest.raises(StaleVersion):
        metrics.counted(execute_stale)(command)
    after = ok._value.get(), conflict._value.get(), metrics.EVENTS._value.get()
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 2]


def test_the_launcher_shares_one_metrics_dir_under_the_data_dir(tmp_path: Path) -> None:
    assert "PROMETHEUS_MULTIPROC_DIR" not in metrics_env({"PATH": "/bin"})
    shared = metrics_env({"PEARL_DATA_DIR": str(tmp_path)})["PROMETHEUS_MULTIPROC_DIR"]
    assert Path(shared) == tmp_path / "metrics" and Path(shared).is_dir()
    named = tmp_path / "elsewhere"
    kept = metrics_env({"PEARL_DATA_DIR": str(tmp_path), "PROMETHEUS_MULTIPROC_DIR": str(named)})
    assert kept["PROMETHEUS_MULTIPROC_DIR"] == str(named) and named.is_dir()
    (Path(shared) / "counter_1.db").write_bytes(b"stale")
    assert reset_metrics_dir(tmp_path) == Path(shared)
    assert list(Path(shared).iterdir()) == []
