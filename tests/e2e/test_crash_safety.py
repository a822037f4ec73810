"""SIGKILL under load: API workers, the projector and the suggestion worker, each on a stack
of its own. Short runs of the `make soak` scenarios (tests/soak), which use bigger numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import DatabaseFactory
from tests.resilience.report import Result
from tests.resilience.stack import Infra
from tests.soak.crash import Load, crash_api, crash_projector
from tests.soak.worker_crash import crash_worker

SMALL = Load(writers=4, commands=12, worlds=2)


@pytest.fixture
def infra(database_factory: DatabaseFactory, redis_url: str, tmp_path: Path) -> Infra:
    return Infra(database_factory, redis_url, tmp_path)


def assert_clean(result: Result) -> None:
    assert result.ok, (result.found, result.notes)


def test_killed_api_workers_lose_and_duplicate_nothing(infra: Infra) -> None:
    result = crash_api(infra, SMALL, kills=4, seed=11)
    assert_clean(result)
    assert result.done["kills"] >= 4
    assert result.done["acknowledged"] == result.done["commands"] >= 48
    assert result.done["unanswered attempts"] >= 1  # the kills landed amid requests
    assert result.done["chains checked"] == 2 * 2  # each world's chain and its main branch


def test_a_killed_projector_resumes_and_matches_a_rebuild(infra: Infra) -> None:
    result = crash_projector(infra, SMALL, kills=3, seed=12)
    assert_clean(result)
    assert result.done["kills"] == 3
    assert result.done["acknowledged"] == result.done["commands"] >= 48


def test_a_worker_killed_mid_task_answers_the_proposal_exactly_once(infra: Infra) -> None:
    result = crash_worker(infra, rounds=2)
    assert_clean(result)
    assert result.done["kills"] == 2
    assert result.done["proposals ready"] == 2
