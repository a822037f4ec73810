"""`Branch.undone_on_error`: a command that fails after changing a branch leaves it exactly as
it was (so a branch that lost a race or was refused can stay cached)."""

from __future__ import annotations

import copy
from typing import Any
from uuid import uuid4

import pytest

from commands.branch import Branch
from commands.dates import DEFAULT_CALENDAR, Calendar


class Failed(Exception):
    pass


def state(branch: Branch) -> dict[str, Any]:
    return copy.deepcopy({k: v for k, v in vars(branch).items() if k != "_pending_events"})


@pytest.fixture
def branch() -> Branch:
    made = Branch.start(uuid4(), world_id=uuid4(), name="main")
    made.add_location("l1", {"name": "L", "kind": "k"})
    made.add_location("l2", {"name": "L2", "kind": "k", "parent_id": "l1"})
    made.add_element("e1", {"name": "E", "kind": "k", "metadata": {"a": {"b": 1}}})
    made.add_timeline("t1", {"name": "T"})
    fields = {"timeline_id": "t1", "title": "x", "start": {"year": 1}, "element_ids": ["e1"]}
    made.add_timeline_event(
        "v1", {**fields, "location_id": "l2"}, Calendar.from_dict(DEFAULT_CALENDAR)
    )
    made.collect_events()
    return made


class TestUndoneOnError:
    def test_every_kind_of_change_is_undone(self, branch: Branch) -> None:
        before = state(branch)
        with pytest.raises(Failed), branch.undone_on_error():
            branch.add_element("e2", {"name": "E2", "kind": "k"})
            branch.update_element("e1", {"name": "X", "metadata": {"a": {"b": None, "c": 2}}}, None)
            branch.update_location("l2", {"parent_id": None}, None)
            branch.remove_location("l1", None, cascade=True)  # l2 moved out: l1 alone
            branch.remove_element("e1", None, cascade=True)  # unlinks it from v1
            raise Failed
        assert state(branch) == before
        assert branch.pending_events == []
        assert branch.journal is None

    def test_the_same_entity_changed_twice_comes_back_as_first_seen(self, branch: Branch) -> None:
        before = state(branch)
        with pytest.raises(Failed), branch.undone_on_error():
            branch.update_element("e1", {"name": "once"}, None)
            branch.update_element("e1", {"name": "twice"}, None)
            raise Failed
        assert state(branch) == before

    def test_without_an_error_the_changes_stay(self, branch: Branch) -> None:
        with branch.undone_on_error():
            branch.add_element("e2", {"name": "E2", "kind": "k"})
        assert "e2" in branch.entities["elements"]
        assert len(branch.pending_events) == 1
        assert branch.journal is None
        branch.collect_events()
        branch.add_element("e3", {"name": "E3", "kind": "k"})  # no journal kept outside
        assert branch.journal is None
