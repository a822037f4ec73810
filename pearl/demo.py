"""`pearl demo`: load a sample world through the write side, so every edit is a real event.

Two demo accounts are created when missing, both with one password: PEARL_DEMO_PASSWORD, or a
random one generated for the run and printed once (they are demo accounts: never use them for
real work):

- demo-owner@example.com  owns the world
- demo-editor@example.com is a member with the role `editor`

The world "Tessaly" has a tree of locations, characters, factions and artifacts (metadata
such as `{"faction": "red"}` and in-world `born`/`died` dates), two timelines of events
(some titles name an element they do not link, for `link-mentions` to find), a history of
edits by both users, a branch `what-if` forked from `main` with edits of its own, and a
`link-mentions` proposal, queued when REDIS_URL (or a running `pearl up`'s Redis) reaches a
broker, so the worker makes it ready to review. Each run
adds a new world (the accounts are reused).
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Engine, create_engine, select

from api import users
from api.tables import users as users_table
from commands.application import WorldHistory
from commands.messages import (
    AddEntity,
    Command,
    CreateWorld,
    ForkBranch,
    RequestSuggestion,
    SetMemberRole,
    UpdateEntity,
    UpdateWorld,
)
from commands.provenance import Provenance
from pearl import launcher
from pearl.processes import PortInUseError, check_port_free
from pearl.projection_commands import database
from suggestions.dispatch import QueueUnavailable, broker_reachable, enqueue


def demo_password() -> str:
    """PEARL_DEMO_PASSWORD, else a fresh random one per run (printed once; never stored)."""
    return os.environ.get("PEARL_DEMO_PASSWORD") or secrets.token_urlsafe(12)


OWNER_EMAIL = "demo-owner@example.com"
EDITOR_EMAIL = "demo-editor@example.com"
FORK = "what-if"

CALENDAR = {
    "months": [
        {"name": name, "days": 30}
        for name in ("Frostwane", "Thaw", "Seedfall", "Greentide", "Highsun", "Emberfall")
    ],
    "year_zero": False,
    "eras": [{"name": "Age of Tides", "start_year": 1}],
}

CONTINENTS = {
    "Vareth": {
        "Ashen Coast": ["Saltmere", "Greywatch"],
        "Redmarch": ["Crown's Rest", "Emberford"],
        "Thornwild": ["Briarhold", "Mosswick"],
    },
    "Oskaria": {
        "Frostreach": ["Icehaven", "Pale Harbor"],
        "Blue Fells": ["Tarn", "Skyloft"],
        "Hollow Vale": ["Deepwell", "Lanternfall"],
    },
    "Sunward Isles": {
        "Coral Reach": ["Tidehome", "Pearlgate"],
        "Green Atoll": ["Verdance", "Shellby"],
        "Windward Keys": ["Galeport", "Driftmoor"],
    },
}

# key: (kind, name, summary, tags, metadata)
ELEMENTS: dict[str, tuple[str, str, str, list[str], dict[str, Any]]] = {
    "red": ("faction", "The Red Crown", "A monarchy of the coast", ["faction"], {"color": "red"}),
    "blue": ("faction", "The Blue Conclave", "Mages of the fells", ["faction"], {"color": "blue"}),
    "green": ("faction", "The Green Wardens", "Keepers of the isles", [], {"color": "green"}),
    "aldra": (
        "character",
        "Queen Aldra",
        "Sovereign of the Red Crown",
        ["ruler"],
        {"faction": "red", "born": {"year": 402, "month": 3, "day": 14}},
    ),
    "corwin": (
        "character",
        "Corwin Vale",
        "A smuggler with a conscience",
        ["rogue"],
        {"faction": "green", "born": {"year": 421}},
    ),
    "mira": (
        "character",
        "Archmage Mira",
        "Head of the Blue Conclave",
        ["mage"],
        {"faction": "blue", "born": {"year": 380}, "died": {"year": 447, "month": 5}},
    ),
    "tobin": (
        "character",
        "Tobin Ash",
        "A young cartographer",
        ["scholar"],
        {"born": {"year": 430, "month": 1}},
    ),
    "ysolde": (
        "character",
        "Ysolde",
        "Captain of the Tidehome fleet",
        ["captain"],
        {"faction": "green", "born": {"year": 415}},
    ),
    "garrick": (
        "character",
        "Lord Garrick",
        "The Queen's spymaster",
        ["spy"],
        {"faction": "red", "born": {"year": 398}, "died": {"year": 449, "month": 2, "day": 9}},
    ),
    "lantern": (
        "artifact",
        "The Pale Lantern",
        "A lamp that shows what was",
        ["relic"],
        {"faction": "blue", "forged": {"year": 12}},
    ),
    "crown": (
        "artifact",
        "The Ember Crown",
        "Worn by every ruler of Redmarch",
        ["relic", "regalia"],
        {"faction": "red", "forged": {"year": 210}},
    ),
    "compass": (
        "artifact",
        "Tobin's Compass",
        "Always points to the nearest storm",
        [],
        {"owner": "tobin"},
    ),
}

# key: (timeline, title, start, end, location, linked elements); some titles name an
# element they do not link: those are for `link-mentions` to find.
EVENTS: dict[str, tuple[str, str, dict[str, int], dict[str, int] | None, str, list[str]]] = {
    "coronation": (
        "crown",
        "Coronation of Queen Aldra",
        {"year": 425, "month": 2, "day": 1},
        None,
        "Crown's Rest",
        ["aldra", "crown"],
    ),
    "treaty": (
        "crown",
        "Treaty of Saltmere",
        {"year": 431, "month": 4},
        {"year": 431, "month": 5},
        "Saltmere",
        ["red", "green"],
    ),
    "spy": (
        "crown",
        "Lord Garrick uncovers a plot",  # names Lord Garrick, links nobody
        {"year": 436},
        None,
        "Emberford",
        [],
    ),
    "siege": (
        "crown",
        "Siege of Greywatch",
        {"year": 440, "month": 6, "day": 12},
        {"year": 441, "month": 1},
        "Greywatch",
        ["red", "blue"],
    ),
    "death": (
        "crown",
        "Funeral of Lord Garrick",
        {"year": 449, "month": 2, "day": 20},
        None,
        "Crown's Rest",
        ["garrick", "aldra"],
    ),
    "founding": (
        "tides",
        "Founding of Tidehome",
        {"year": 1},
        None,
        "Tidehome",
        ["green"],
    ),
    "lantern_found": (
        "tides",
        "The Pale Lantern is found in Deepwell",  # names the Lantern, links nobody
        {"year": 388, "month": 3},
        None,
        "Deepwell",
        [],
    ),
    "conclave": (
        "tides",
        "Archmage Mira convenes the Conclave",
        {"year": 412},
        None,
        "Skyloft",
        ["mira", "blue"],
    ),
    "storm": (
        "tides",
        "Great Storm of the Keys",
        {"year": 433, "month": 6},
        {"year": 433, "month": 6, "day": 28},
        "Galeport",
        [],
    ),
    "voyage": (
        "tides",
        "Ysolde sails with Corwin Vale",  # links Ysolde, not Corwin
        {"year": 438, "month": 2},
        None,
        "Pearlgate",
        ["ysolde"],
    ),
    "map": (
        "tides",
        "Tobin Ash maps the Windward Keys",
        {"year": 446},
        None,
        "Driftmoor",
        ["tobin", "compass"],
    ),
    "mira_dies": (
        "tides",
        "Passing of Archmage Mira",
        {"year": 447, "month": 5, "day": 3},
        None,
        "Lanternfall",
        ["mira"],
    ),
}

Step = Callable[[str], None]


@dataclass
class DemoWorld:
    world_id: UUID
    owner: dict[str, Any]
    editor: dict[str, Any]
    ids: dict[str, str] = field(default_factory=dict)
    events: int = 0
    proposal_id: UUID | None = None
    queued: bool = False


def ensure_user(
    engine: Engine, email: str, display_name: str, password: str
) -> tuple[dict[str, Any], bool]:
    """The demo account with `email` (registered with `password` when missing)."""
    with engine.connect() as conn:
        row = (
            conn.execute(select(users_table).where(users_table.c.email == email)).mappings().first()
        )
    if row is not None:
        return users.public(dict(row)), False
    return users.register(engine, email, password, display_name), True


def load(
    history: WorldHistory,
    owner: dict[str, Any],
    editor: dict[str, Any],
    step: Step,
    redis_url: str | None = None,
) -> DemoWorld:
    """Record the demo world as `owner` and `editor`; `step` hears of each stage."""
    demo = DemoWorld(world_id=uuid4(), owner=owner, editor=editor)
    as_owner, as_editor = str(owner["id"]), str(editor["id"])
    w, ids = demo.world_id, demo.ids

    def run(commands: list[Command], who: str) -> None:
        for command in commands:  # a Provenance (and so a command id) for each command
            history.handle(command, Provenance(actor=who, correlation_id="pearl-demo"))
            demo.events += 1

    def key(name: str) -> str:
        return ids.setdefault(name, str(uuid4()))

    step("creating the world and its members")
    run(
        [
            CreateWorld(w, owner["id"], "Tessaly", "A sample world for Space Pearl", CALENDAR),
            SetMemberRole(w, editor["id"], "editor"),
            UpdateWorld(w, {"description": "Three continents, two ages, one unfinished story"}),
        ],
        as_owner,
    )

    step("adding the locations (a tree of continents, regions and towns)")
    places: list[Command] = [
        AddEntity(w, "main", "locations", key("Tessaly"), {"name": "Tessaly", "kind": "planet"})
    ]
    for continent, regions in CONTINENTS.items():
        places.append(_place(w, key(continent), continent, "continent", ids["Tessaly"]))
        for region, towns in regions.items():
            places.append(_place(w, key(region), region, "region", ids[continent]))
            places.extend(_place(w, key(t), t, "town", ids[region]) for t in towns)
    run(places, as_owner)

    step("adding the characters, factions and artifacts")
    run(
        [
            AddEntity(
                w,
                "main",
                "elements",
                key(name),
                {"kind": kind, "name": title, "summary": summary, "tags": tags, "metadata": meta},
            )
            for name, (kind, title, summary, tags, meta) in ELEMENTS.items()
        ],
        as_owner,
    )

    step("adding two timelines and their events")
    run(
        [
            AddEntity(
                w, "main", "timelines", key("timeline:crown"), {"name": "Chronicle of the Crown"}
            ),
            AddEntity(
                w,
                "main",
                "timelines",
                key("timeline:tides"),
                {"name": "Age of Tides", "description": "The isles and the fells"},
            ),
        ],
        as_owner,
    )
    half = len(EVENTS) // 2
    for index, (name, (timeline, title, start, end, place, linked)) in enumerate(EVENTS.items()):
        fields: dict[str, Any] = {
            "timeline_id": ids[f"timeline:{timeline}"],
            "title": title,
            "start": start,
            "location_id": ids[place],
            "element_ids": [ids[e] for e in linked],
        }
        if end is not None:
            fields["end"] = end
        who = as_owner if index < half else as_editor  # the editor writes the second half
        run([AddEntity(w, "main", "timeline_events", key(f"event:{name}"), fields)], who)

    step("editing as the owner and the editor")
    run(
        [
            UpdateEntity(w, "main", "elements", ids["corwin"], {"summary": "A reformed smuggler"}),
            UpdateEntity(
                w, "main", "locations", ids["Mosswick"], {"description": "A village in the moss"}
            ),
            UpdateEntity(
                w,
                "main",
                "timeline_events",
                ids["event:storm"],
                {"element_ids": [ids["ysolde"]], "description": "The fleet is scattered"},
            ),
            UpdateEntity(w, "main", "elements", ids["tobin"], {"metadata": {"faction": "green"}}),
        ],
        as_editor,
    )
    run(
        [
            UpdateEntity(w, "main", "locations", ids["Lanternfall"], {"parent_id": ids["Tarn"]}),
            UpdateEntity(
                w,
                "main",
                "timeline_events",
                ids["event:siege"],
                {"title": "The Siege of Greywatch"},
            ),
            UpdateEntity(
                w,
                "main",
                "timelines",
                ids["timeline:crown"],
                {"description": "Kings and queens of Vareth"},
            ),
            UpdateEntity(
                w,
                "main",
                "timeline_events",
                ids["event:treaty"],
                {"start": {"year": 431, "month": 3, "day": 20}},
            ),
        ],
        as_owner,
    )

    step(f"forking {FORK!r} from main and editing it")
    run([ForkBranch(w, FORK, "main")], as_owner)
    run(
        [
            UpdateEntity(
                w,
                FORK,
                "elements",
                ids["garrick"],
                {"metadata": {"died": None}, "summary": "The spymaster who lived"},
            ),
            UpdateEntity(
                w,
                FORK,
                "timeline_events",
                ids["event:death"],
                {"title": "Lord Garrick feigns his death"},
            ),
            AddEntity(
                w,
                FORK,
                "timeline_events",
                key("event:return"),
                {
                    "timeline_id": ids["timeline:crown"],
                    "title": "Return of the spymaster",
                    "start": {"year": 452},
                    "location_id": ids["Crown's Rest"],
                    "element_ids": [ids["garrick"], ids["aldra"]],
                },
            ),
        ],
        as_editor,
    )

    step("requesting a link-mentions suggestion on main")
    demo.proposal_id = uuid4()
    run([RequestSuggestion(w, "main", demo.proposal_id, "link-mentions", {})], as_owner)
    if redis_url and broker_reachable(redis_url):
        try:
            enqueue(redis_url, str(demo.proposal_id))
            demo.queued = True
        except QueueUnavailable:
            demo.queued = False
    return demo


def _place(world_id: UUID, location_id: str, name: str, kind: str, parent: str) -> AddEntity:
    return AddEntity(
        world_id,
        "main",
        "locations",
        location_id,
        {"name": name, "kind": kind, "parent_id": parent},
    )


def running_embedded_redis() -> str | None:
    """The embedded Redis of a running `pearl up` (its port is taken), else None."""
    port = launcher.Settings.from_env().redis_port
    try:
        check_port_free(port, what="embedded Redis")
    except PortInUseError:
        return f"redis://127.0.0.1:{port}/0"
    return None


def run() -> int:
    """`pearl demo`: the accounts, the world, and what to try next."""

    def step(what: str) -> None:
        print(f"pearl: demo: {what}", file=sys.stderr, flush=True)

    redis_url = os.environ.get("REDIS_URL") or running_embedded_redis()
    with database() as url:
        engine = create_engine(url)
        history = WorldHistory.on_database(url)
        try:
            step("creating the demo accounts (when missing)")
            password = demo_password()
            owner, new_owner = ensure_user(engine, OWNER_EMAIL, "Demo Owner", password)
            editor, new_editor = ensure_user(engine, EDITOR_EMAIL, "Demo Editor", password)
            demo = load(history, owner, editor, step, redis_url)
        finally:
            history.close()
            engine.dispose()
    _report(demo, new_owner, new_editor, bool(redis_url), password)
    return 0


def _report(
    demo: DemoWorld, new_owner: bool, new_editor: bool, redis_set: bool, password: str
) -> None:
    port = os.environ.get("PORT", "8000")
    base = f"http://127.0.0.1:{port}/api/v1"
    w = demo.world_id
    if demo.queued:
        queue = "queued for the workers"
    elif redis_set:
        queue = "pending: REDIS_URL is not reachable, so it was not queued"
    else:
        queue = "pending: REDIS_URL is not set and no pearl up is running, so it was not queued"
    print(f"world:    {w} (Tessaly, {demo.events} commands recorded)")
    print(f"branches: main, {FORK}")
    for role, user, new in (("owner", demo.owner, new_owner), ("editor", demo.editor, new_editor)):
        secret = password if new else "(existing account: its password is unchanged)"
        print(f"{role + ':':<10}{user['email']} / {secret} (id {user['id']})")
    print(f"proposal: {demo.proposal_id} (link-mentions, {queue})")
    shown = password if new_owner else "<its password>"
    print("try next (with `pearl up` running):")
    print(
        f"  TOKEN=$(curl -s {base}/auth/token -H 'Content-Type: application/json' "
        f"""-d '{{"email": "{OWNER_EMAIL}", "password": "{shown}"}}' """
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )
    auth = '-H "Authorization: Bearer $TOKEN"'
    print(f"  curl -s {auth} {base}/worlds/{w}/branches/main/locations")
    print(f'  curl -s {auth} "{base}/worlds/{w}/compare?base=main&head={FORK}"')
    print(f"  curl -s {auth} {base}/worlds/{w}/proposals")
    print(f"  pearl audit verify {w}")
