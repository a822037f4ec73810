"""User JSON shaped like the event store's typed values is refused before it is recorded.

The transcoder reads an object with `_type_` and `_data_` keys back as a typed value, so
storing one would make the branch unreadable (or change its hash on reload)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from commands.application import WorldHistory
from commands.branch import Branch
from commands.errors import InvalidCommand
from commands.messages import AddEntity, CreateWorld, UpdateEntity
from commands.provenance import Provenance
from commands.validation import reserved_path

POISON = {"_type_": "uuid_hex", "_data_": "00000000000000000000000000000001"}
WRITER = Provenance(actor="writer")


class TestFindingTheReservedShape:
    @pytest.mark.parametrize(
        ("value", "where"),
        [
            (POISON, "(top level)"),
            ({"a": {"b": POISON}}, "a.b"),
            ({"a": [1, {"c": POISON}]}, "a[1].c"),
        ],
    )
    def test_names_where_it_sits(self, value: object, where: str) -> None:
        assert reserved_path(value) == where

    @pytest.mark.parametrize("value", [{"_type_": 1}, {"_data_": 1}, {"a": [1, "x"]}, []])
    def test_one_of_the_keys_alone_is_fine(self, value: object) -> None:
        assert reserved_path(value) is None


class TestRefusingIt:
    def test_in_metadata_of_a_new_entity(self) -> None:
        branch = Branch.start(uuid4(), world_id=uuid4(), name="main")
        with pytest.raises(InvalidCommand) as refused:
            branch.add_element("e1", {"kind": "k", "name": "n", "metadata": {"x": POISON}})
        assert "metadata" in refused.value.errors
        assert len(branch.pending_events) == 1  # only the start event

    def test_in_a_metadata_patch_nothing_is_recorded_and_the_branch_stays_readable(self) -> None:
        app = WorldHistory()
        world_id = uuid4()
        app.handle(CreateWorld(world_id, "owner", "W"), WRITER)
        app.handle(
            AddEntity(world_id, "main", "elements", "e1", {"kind": "k", "name": "n"}), WRITER
        )
        before = len(app.recorder.select_notifications(start=1, limit=100))
        with pytest.raises(InvalidCommand):
            app.handle(
                UpdateEntity(world_id, "main", "elements", "e1", {"metadata": {"x": POISON}}),
                WRITER,
            )
        assert len(app.recorder.select_notifications(start=1, limit=100)) == before
        assert app.entity(world_id, "main", "elements", "e1")["metadata"] == {}
