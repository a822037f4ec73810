"""Fixtures shared by the in-memory unit tests of the write side."""

from __future__ import annotations

from uuid import uuid4

import pytest

from commands.application import WorldHistory
from commands.branch import Branch
from commands.dates import DEFAULT_CALENDAR, Calendar
from commands.provenance import Provenance
from commands.world import World

# Settings the application reads from the process environment (bare or `PEARL_`-prefixed).
APPLICATION_SETTINGS = (
    "PERSISTENCE_MODULE",
    "COMMAND_RETRIES",
    "AGGREGATE_CACHE_MAXSIZE",
    "AGGREGATE_CACHE_FASTFORWARD",
    "AGGREGATE_CACHE_FASTFORWARD_SKIPPING",
    "DEEPCOPY_FROM_AGGREGATE_CACHE",
    "IS_SNAPSHOTTING_ENABLED",
    "MAPPER_TOPIC",
    "TRANSCODER_TOPIC",
    "CIPHER_TOPIC",
    "CIPHER_KEY",
    "COMPRESSOR_TOPIC",
    "APPLICATION_RECORDER_TOPIC",
    "BRANCH_CACHE_SIZE",
    "BRANCH_CACHE_ENTITIES",
)


@pytest.fixture(autouse=True)
def in_memory_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the process environment from pointing WorldHistory() away from POPO defaults."""
    for key in APPLICATION_SETTINGS:
        for name in (key, f"{WorldHistory.name.upper()}_{key}"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def calendar() -> Calendar:
    """The default calendar: twelve Gregorian months, no year 0."""
    return Calendar.from_dict(DEFAULT_CALENDAR)


@pytest.fixture
def world() -> World:
    """A fresh world owned by `owner`, its creation event already collected."""
    created = World.create(uuid4(), name="Aerth", owner_id="owner")
    created.collect_events()
    return created


@pytest.fixture
def branch() -> Branch:
    """A fresh `main` branch, its start event already collected."""
    started = Branch.start(uuid4(), world_id=uuid4(), name="main")
    started.collect_events()
    return started


@pytest.fixture
def app() -> WorldHistory:
    """The write-side application on in-memory (POPO) persistence."""
    application = WorldHistory()
    assert type(application.recorder).__module__ == "eventsourcing.popo"
    return application


@pytest.fixture
def alice() -> Provenance:
    """The provenance of a command sent by user `alice`."""
    return Provenance(actor="alice", correlation_id="req-1")
