"""Worlds for the archive tests, built through the write side on any WorldHistory.

`build_world` records every kind of event an archive must carry: the four collections with
metadata patches, moves, reschedules, links and a cascading removal; member added, changed
and removed; a calendar; a fork with edits of its own (one to an inherited entity), a fork
of that fork at a version before its fork point, a merge and a revert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID, uuid4

from commands.application import WorldHistory
from commands.messages import (
    AddEntity,
    Command,
    CreateWorld,
    ForkBranch,
    MergeBranch,
    RemoveEntity,
    RemoveMember,
    RevertBranch,
    SetMemberRole,
    UpdateEntity,
    UpdateWorld,
)
from commands.provenance import Provenance

CALENDAR = {
    "months": [{"name": f"Moon {i}", "days": 30} for i in range(1, 13)],
    "year_zero": True,
    "eras": [{"name": "Age of Sail", "start_year": 100}],
}
BRANCHES = ("main", "what-if", "early")


@dataclass
class BuiltWorld:
    world_id: UUID
    owner: str
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def auditor(self) -> str:
        return self.ids["auditor"]


def build_world(history: WorldHistory, name: str = "Aerth") -> BuiltWorld:
    """A world with every kind of event, recorded by its owner (a fresh user id)."""
    built = BuiltWorld(world_id=uuid4(), owner=str(uuid4()))
    keys = ["L1", "L2", "E1", "E2", "E3", "T1", "T2", "TE1", "TE2", "editor", "auditor", "guest"]
    built.ids = {key: str(uuid4()) for key in keys}
    as_owner = Provenance(actor=built.owner, correlation_id="req-archive")
    for command in _script(built, name):
        history.handle(command, as_owner)
    return built


def _script(built: BuiltWorld, name: str) -> list[Command]:
    w, i = built.world_id, built.ids

    def add(branch: str, collection: str, key: str, **fields: object) -> AddEntity:
        return AddEntity(w, branch, collection, i[key], dict(fields))

    def change(branch: str, collection: str, key: str, **changes: object) -> UpdateEntity:
        return UpdateEntity(w, branch, collection, i[key], dict(changes))

    return [
        CreateWorld(w, owner_id=built.owner, name=name, description="A world to archive"),
        SetMemberRole(w, i["editor"], "editor"),
        SetMemberRole(w, i["auditor"], "viewer"),
        SetMemberRole(w, i["auditor"], "auditor"),
        SetMemberRole(w, i["guest"], "viewer"),
        RemoveMember(w, i["guest"]),
        UpdateWorld(w, {"name": f"{name} II", "calendar": CALENDAR}),
        UpdateWorld(w, {"description": "A world, archived"}),
        add("main", "locations", "L1", name="Aerth", kind="planet", metadata={"moons": 1}),
        add("main", "locations", "L2", name="Westmarch", kind="region", parent_id=i["L1"]),
        add("main", "elements", "E1", kind="character", name="Ilsa", tags=["hero"]),
        add("main", "elements", "E2", kind="faction", name="Guild", summary="Traders"),
        add("main", "timelines", "T1", name="First Age", description="Before the fall"),
        add(
            "main",
            "timeline_events",
            "TE1",
            timeline_id=i["T1"],
            title="Council",
            start={"year": 412, "month": 11, "day": 2},
            end={"year": 413},
            location_id=i["L2"],
            element_ids=[i["E1"]],
            metadata={"source": "annals"},
        ),
        change("main", "locations", "L1", name="Great Aerth", metadata={"moons": None, "r": 2}),
        change("main", "locations", "L2", parent_id=None),
        change("main", "timeline_events", "TE1", start={"year": 412}, element_ids=[i["E2"]]),
        change("main", "timeline_events", "TE1", title="The Council"),
        change("main", "timelines", "T1", description="The first age"),
        add("main", "timelines", "T2", name="Second Age"),
        add("main", "timeline_events", "TE2", timeline_id=i["T2"], title="War", start={"year": 1}),
        RemoveEntity(w, "main", "timelines", i["T2"], cascade=True),
        ForkBranch(w, "what-if", "main"),
        add("what-if", "elements", "E3", kind="artifact", name="Lantern ✦", tags=["light"]),
        change("what-if", "elements", "E1", summary="The hero, who stayed"),
        ForkBranch(w, "early", "what-if", at_version=9),
        change("early", "locations", "L1", description="Before the council"),
        RemoveEntity(w, "main", "elements", i["E2"], cascade=True),
        RemoveEntity(w, "main", "locations", i["L2"], cascade=True),
        MergeBranch(w, "main", "what-if"),
        RevertBranch(w, "what-if", to_version=17),
    ]
