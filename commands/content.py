"""Deciding a content command (add, update or remove a location, element, timeline or
timeline event) on a world and one of its branches, and doing so on their cached state in
one round trip."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Recording
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from commands.branch import Branch
from commands.branch_events import COLLECTIONS
from commands.errors import DomainError, NotFound
from commands.messages import AddEntity, Command, RemoveEntity, UpdateEntity
from commands.world import World, branch_id

if TYPE_CHECKING:
    from commands.application import WorldHistory

ContentCommand = AddEntity | UpdateEntity | RemoveEntity
CONTENT_COMMANDS = (AddEntity, UpdateEntity, RemoveEntity)
Decided = tuple[list[Recording[UUID]], dict[str, Any], int]  # recorded, resource, version
SINGULAR = {"locations": "location", "elements": "element", "timelines": "timeline"}


def check_collection(command: ContentCommand) -> None:
    if command.collection not in COLLECTIONS:
        raise NotFound(f"there is no collection called {command.collection!r}")


def change(world: World, branch: Branch, command: ContentCommand) -> tuple[dict[str, Any], int]:
    """Apply `command` to `branch` (its events pending): the resource and the branch version."""
    collection, entity_id = command.collection, command.entity_id
    if isinstance(command, AddEntity):
        if collection == "timeline_events":
            entity = branch.add_timeline_event(entity_id, command.fields, world.calendar_rules)
        else:
            entity = getattr(branch, f"add_{SINGULAR[collection]}")(entity_id, command.fields)
        return dict(entity), branch.head_version
    if isinstance(command, UpdateEntity):
        expected = command.expected_version
        if collection == "timeline_events":
            entity = branch.update_timeline_event(
                entity_id, command.changes, expected, world.calendar_rules
            )
        else:
            update = getattr(branch, f"update_{SINGULAR[collection]}")
            entity = update(entity_id, command.changes, expected)
        return dict(entity), branch.head_version
    if collection == "timeline_events":
        branch.remove_timeline_event(entity_id, command.expected_version)
    else:
        remove = getattr(branch, f"remove_{SINGULAR[collection]}")
        remove(entity_id, command.expected_version, command.cascade)
    return {"id": entity_id, "version": branch.head_version}, branch.head_version


@contextmanager
def kept_unless_saved(app: WorldHistory, world: World, branch: Branch) -> Iterator[None]:
    """Around deciding a content command on `branch` and saving its events: if the block
    raises, the branch is undone (as it was before, which is what the store holds up to its
    version). On a refusal or a lost race both then go back to the cache, so a retry or the
    next command catches up from there instead of replaying the branch from its start (for
    100,000 entities: seconds, and a second copy in memory while the first is still held)."""
    try:
        with branch.undone_on_error():
            yield
    except (DomainError, IntegrityError, SQLIntegrityError):
        app.branch_cache.give_back(branch)
        app.world_cache.give_back(world)
        raise


def on_cached_state(app: WorldHistory, command: Command) -> Decided | None:
    """Decide a content command on the cached world and branch and append its events in one
    round trip, on condition that neither stream moved meanwhile (the branch's next version
    is free, the world has no newer events). None when they are not both cached, or the
    command was refused or lost that condition: the branch is then undone, both go back to
    the cache, and the caller decides again on the streams' latest state."""
    if not isinstance(command, CONTENT_COMMANDS) or command.collection not in COLLECTIONS:
        return None
    branch = app.branch_cache.take(branch_id(command.world_id, command.branch))
    world = app.world_cache.take(command.world_id) if branch is not None else None
    if branch is None or world is None:
        if branch is not None:
            app.branch_cache.give_back(branch)
        return None
    app.branch_cache.lent(branch)
    app.world_cache.lent(world)
    try:
        with kept_unless_saved(app, world, branch):
            resource, version = change(world, branch, command)
            recordings = app.save(branch, unchanged=(world.id, world.version))
    except (DomainError, IntegrityError, SQLIntegrityError):  # refused or lost on stale state
        return None
    return recordings, resource, version
