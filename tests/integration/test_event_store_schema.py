"""The eventsourcing-sqlalchemy recorders work on the tables the migrations create.

The application is named "pearl", so its recorders use `pearl_events`, `pearl_snapshots` and
`pearl_tracking`; CREATE_TABLE is off, as in production, so a mismatch fails here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.utils import Environment

from pearl.migrate import upgrade


class Note(Aggregate):
    @event("Created")
    def __init__(self, text: str) -> None:
        self.text = text

    @event("Edited")
    def edit(self, text: str) -> None:
        self.text = text


class Notes(Application[UUID]):
    name = "pearl"


@pytest.fixture(scope="module")
def env(database_factory: Callable[[str], str]) -> dict[str, str]:
    """Recorder settings for a migrated database of this module's own."""
    url = database_factory("pearl_event_store")
    upgrade(url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
        "SQLALCHEMY_URL": url,
        "CREATE_TABLE": "false",
        "IS_SNAPSHOTTING_ENABLED": "true",
    }


@pytest.fixture
def app(env: dict[str, str]) -> Iterator[Notes]:
    """The test application on the migrated database."""
    app = Notes(env=env)
    yield app
    app.close()


def test_events_snapshots_and_notifications_round_trip(app: Notes) -> None:
    note = Note("first")
    note.edit("second")
    app.save(note)
    app.take_snapshot(note.id)

    assert app.repository.get(note.id).text == "second"
    notifications = app.notification_log.select(start=1, limit=10)
    mine = [n for n in notifications if n.originator_id == note.id]
    assert [n.originator_version for n in mine] == [1, 2]
    assert mine[0].id < mine[1].id


def test_tracking_positions_are_recorded(env: dict[str, str]) -> None:
    factory = InfrastructureFactory.construct(Environment(name="pearl", env=env))
    recorder = factory.tracking_recorder()
    recorder.insert_tracking(Tracking(application_name="test-projection", notification_id=7))
    assert recorder.max_tracking_id("test-projection") == 7
    factory.close()
