"""Forks, comparisons, merges and reverts: decisions over whole branches.

A fork records only where it starts (`BranchForked`, chained to its parent's hash there);
its state is its parent's state at that version plus its own events, so no history is
copied. Merge and revert compute the state the branch should reach and hand it to
`reconcile`, which records ordinary content events through the usual invariants.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from uuid import UUID

from commands.branch import Branch
from commands.branch_events import BranchForked
from commands.errors import Conflict, DomainError, InvalidCommand, NotFound
from commands.merging import State, compare, plan_merge
from commands.messages import ForkBranch, MergeBranch, RevertBranch
from commands.reconcile import content_of, reconcile
from commands.world import World, branch_id

if TYPE_CHECKING:
    from commands.application import WorldHistory

BRANCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
Decision = tuple[list[Any], dict[str, Any], int]


class MergeConflict(Conflict):
    """The merge was refused; `conflicts` lists each field both sides changed differently."""

    def __init__(self, detail: str, conflicts: list[dict[str, Any]], **extra: Any) -> None:
        super().__init__(detail)
        self.conflicts = conflicts
        self.extra = extra


def lineage_points(world: World, name: str, version: int) -> list[tuple[str, int]]:
    """(branch, version) pairs whose states the given point is built on, itself first."""
    points = [(name, version)]
    forked = world.branches[name]["forked_from"]
    while forked:
        version = min(version, int(forked["version"]))
        points.append((forked["branch"], version))
        forked = world.branches[forked["branch"]]["forked_from"]
    return points


def common_ancestor(world: World, a: tuple[str, int], b: tuple[str, int]) -> tuple[str, int]:
    mine = dict(lineage_points(world, *a))
    for name, version in lineage_points(world, *b):
        if name in mine:
            return name, min(mine[name], version)
    raise InvalidCommand.field("head", "the branches share no history")


def state_at(app: WorldHistory, world: World, name: str, version: int | None) -> Branch:
    if name not in world.branches:
        raise InvalidCommand.field("branch", f"unknown branch {name!r}")
    branch = app.load_branch(branch_id(world.id, name), version)
    if version is not None and version > branch.head_version:
        raise InvalidCommand.field(
            "version", f"branch {name!r} is at version {branch.head_version}"
        )
    return branch


def parse_ref(ref: str, field: str) -> tuple[str, int | None]:
    """`name` or `name@version`."""
    name, _, version = ref.partition("@")
    if not BRANCH_NAME.match(name) or (version and not version.isdigit()):
        raise InvalidCommand.field(field, "must be a branch name, optionally with @version")
    return name, int(version) if version else None


def head_of(app: WorldHistory, stream_id: UUID) -> int:
    """A branch's head version from two of its events (its first, which says where a fork
    starts, and its last), not from its state: forking a branch of 100,000 entities that
    this process has not loaded costs two reads, not a replay."""
    first: Any = next(iter(app.events.get(stream_id, lte=1)), None)
    if first is None:
        raise NotFound(f"branch stream {stream_id} does not exist")
    last: Any = next(iter(app.events.get(stream_id, desc=True, limit=1)))
    base = first.at_version if isinstance(first, BranchForked) else 0
    return int(base + last.originator_version - 1)  # as Branch.head_version counts


def fork(app: WorldHistory, command: ForkBranch) -> Decision:
    world = app.world(command.world_id)
    if not BRANCH_NAME.match(command.name):
        raise InvalidCommand.field(
            "name", "1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if command.source not in world.branches:
        raise InvalidCommand.field("from", f"unknown branch {command.source!r}")
    source_id = branch_id(world.id, command.source)
    head = head_of(app, source_id)
    at = head if command.at_version is None else command.at_version
    if not 0 <= at <= head:
        raise InvalidCommand.field(
            "at_version", f"must be between 0 and {head} (the head of the branch)"
        )
    new_id = world.register_branch(command.name, {"branch": command.source, "version": at})
    branch = Branch.fork(
        new_id,
        world_id=world.id,
        name=command.name,
        parent_branch_id=source_id,
        parent_branch=command.source,
        at_version=at,
        parent_hash=app.hash_at(source_id, at),
    )
    return [world, branch], branch_resource(branch), branch.head_version


def revert(app: WorldHistory, command: RevertBranch) -> Decision:
    world = app.world(command.world_id)
    branch = app.branch(world, command.branch)
    if not 0 <= command.to_version <= branch.head_version:
        raise InvalidCommand.field(
            "to_version", f"must be between 0 and {branch.head_version} (the head of the branch)"
        )
    target = app.load_branch(branch.id, command.to_version).entities
    desired = {
        collection: {
            entity_id: content_of(target[collection].get(entity_id))
            for entity_id in branch.entities[collection].keys() | target[collection].keys()
        }
        for collection in target
    }
    changed = reconcile(branch, desired, world.calendar_rules)
    if changed:
        branch.record_revert(command.to_version)
    resource = {**branch_resource(branch), "reverted_to": command.to_version, "events": changed}
    return ([branch] if changed else []), resource, branch.head_version


def merge(app: WorldHistory, command: MergeBranch) -> Decision:
    world = app.world(command.world_id)
    if command.source == command.target:
        raise InvalidCommand.field("source", "a branch cannot be merged into itself")
    if command.source not in world.branches:
        raise InvalidCommand.field("source", f"unknown branch {command.source!r}")
    target = app.branch(world, command.target)
    source = state_at(app, world, command.source, None)
    ancestor = merge_base(world, target, source)
    base = state_at(app, world, *ancestor).entities
    plan = plan_merge(base, target.entities, source.entities)
    summary = {
        "target": command.target,
        "source": command.source,
        "ancestor": {"branch": ancestor[0], "version": ancestor[1]},
        "dry_run": command.dry_run,
    }
    if plan.conflicts:
        raise MergeConflict(
            f"{len(plan.conflicts)} conflicting change(s); nothing was applied",
            plan.conflicts,
            **summary,
        )
    head_before = target.head_version
    try:
        applied = reconcile(target, plan.desired, world.calendar_rules)
    except DomainError as error:
        raise MergeConflict(
            f"the merged state would break an invariant ({error.detail}); nothing was applied",
            [],
            **summary,
        ) from None
    resource = {**summary, "edits": plan.edits, "events": applied}
    if command.dry_run:
        return [], {**resource, "head_version": head_before}, head_before
    if applied or target.merges.get(command.source, [None])[0] != source.head_version:
        target.record_merge(command.source, source.head_version)
    changed = len(target.pending_events) > 0
    head = {"head_version": target.head_version}
    return ([target] if changed else []), {**resource, **head}, target.head_version


def merge_base(world: World, target: Branch, source: Branch) -> tuple[str, int]:
    """The most recent merge between the two branches (either way), else the fork point.

    After merging S@v into T, S@v is in both; after merging T@w into S, T@w is in both. The
    later of the two is the better ancestor: S's own version at its merge of T tells which.
    """
    into_target = target.merges.get(source.name)  # [v, T's version then]
    into_source = source.merges.get(target.name)  # [w, S's version then]
    if into_source and (not into_target or into_source[1] >= into_target[0]):
        return target.name, into_source[0]
    if into_target:
        return source.name, into_target[0]
    return common_ancestor(
        world, (target.name, target.head_version), (source.name, source.head_version)
    )


def comparison(app: WorldHistory, world_id: UUID, base_ref: str, head_ref: str) -> dict[str, Any]:
    world = app.world(world_id)
    base_name, base_version = parse_ref(base_ref, "base")
    head_name, head_version = parse_ref(head_ref, "head")
    base = state_at(app, world, base_name, base_version)
    head = state_at(app, world, head_name, head_version)
    base_point = (base_name, base_version if base_version is not None else base.head_version)
    head_point = (head_name, head_version if head_version is not None else head.head_version)
    ancestor = common_ancestor(world, base_point, head_point)
    states: tuple[State, State] = (base.entities, head.entities)
    return {
        "base": f"{base_point[0]}@{base_point[1]}",
        "head": f"{head_point[0]}@{head_point[1]}",
        "ancestor": {"branch": ancestor[0], "version": ancestor[1]},
        "changes": compare(*states),
    }


def branch_resource(branch: Branch) -> dict[str, Any]:
    return {
        "name": branch.name,
        "head_version": branch.head_version,
        "forked_from": branch.forked_from,
    }
