"""Suggestions as commands: request, complete (validating every edit), fail, accept, reject.

An edit is `{"index", "command", "target", "body"}` in the shape of the matching command
endpoint: `command` is `create`, `update` or `delete`; `target` is the collection path
(`timeline-events`) for a create and `collection/id` otherwise; `body` is the JSON the
endpoint takes. An optional `expected_version` makes the edit refuse an entity that moved on.
Edits are applied through the same Branch methods, so the same invariants hold.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from commands.branch import Branch
from commands.dates import Calendar
from commands.errors import Conflict, DomainError, InvalidCommand, NotFound
from commands.messages import (
    AcceptProposal,
    CompleteProposal,
    FailProposal,
    RejectProposal,
    RequestSuggestion,
)
from commands.proposal import Proposal
from commands.provenance import current_provenance, recorded_by
from commands.validation import check_storable, reserved_path

if TYPE_CHECKING:
    from commands.application import WorldHistory

SEGMENTS = {
    "locations": "locations",
    "elements": "elements",
    "timelines": "timelines",
    "timeline-events": "timeline_events",
}
Decision = tuple[list[Any], dict[str, Any], int]


class ProposalConflict(Conflict):
    """Some chosen edits no longer apply; `conflicts` says which and why."""

    def __init__(self, detail: str, conflicts: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.conflicts = conflicts


def apply_edit(branch: Branch, edit: Any, calendar: Calendar, proposal_id: UUID) -> None:
    """Apply one edit to `branch` (raises a DomainError, before recording, if it cannot)."""
    if not isinstance(edit, dict) or not isinstance(edit.get("body", {}), dict):
        raise InvalidCommand.field("edit", "must be an object with command, target and body")
    check_storable(edit, "edit")
    command, target, body = edit.get("command"), edit.get("target"), edit.get("body", {})
    segment, _, entity_id = str(target or "").partition("/")
    collection = SEGMENTS.get(segment)
    if collection is None or command not in ("create", "update", "delete"):
        raise InvalidCommand.field("edit", f"unknown command {command!r} on {target!r}")
    singular = collection[:-1]
    if command == "create":
        new_id = str(uuid5(proposal_id, f"edit:{edit.get('index')}"))
        if collection == "timeline_events":
            branch.add_timeline_event(new_id, body, calendar)
        else:
            getattr(branch, f"add_{singular}")(new_id, body)
        return
    if not entity_id:
        raise InvalidCommand.field("edit", f"{command} needs a target of the form {segment}/<id>")
    expected = edit.get("expected_version")
    if expected is not None and not isinstance(expected, int):
        raise InvalidCommand.field("expected_version", "must be an integer")
    if command == "update":
        if collection == "timeline_events":
            branch.update_timeline_event(entity_id, body, expected, calendar)
        else:
            getattr(branch, f"update_{singular}")(entity_id, body, expected)
    elif collection == "timeline_events":
        branch.remove_timeline_event(entity_id, expected)
    else:
        getattr(branch, f"remove_{singular}")(entity_id, expected, False)


def request(app: WorldHistory, command: RequestSuggestion) -> Decision:
    world = app.world(command.world_id)
    app.branch(world, command.branch)  # it must exist
    proposal = Proposal.request(
        command.proposal_id,
        world_id=command.world_id,
        branch=command.branch,
        kind=command.kind,
        params=command.params,
    )
    return [proposal], proposal_resource(proposal), proposal.version


def complete(app: WorldHistory, command: CompleteProposal) -> Decision:
    """Validate each proposed edit against the branch as it is now; keep the valid ones."""
    proposal = app.proposal(command.proposal_id)
    world = app.world(UUID(proposal.world_id))
    branch = app.branch(world, proposal.branch)
    calendar = world.calendar_rules
    edits: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for raw in command.edits:
        candidate = dict(raw) if isinstance(raw, dict) else {"raw": raw}
        candidate["index"] = len(edits)
        try:
            apply_edit(branch, candidate, calendar, proposal.id)
        except DomainError as error:
            kept = raw if reserved_path(raw) is None else json.dumps(raw, default=str)[:4000]
            dropped.append({"edit": kept, "reason": error.detail})
            continue
        edits.append(
            {
                k: candidate[k]
                for k in ("index", "command", "target", "body", "expected_version")
                if k in candidate
            }
        )
    settled = proposal.complete(
        edits=edits,
        dropped=dropped,
        flags=command.flags,
        provider=command.provider,
        model=command.model,
        prompt_version=command.prompt_version,
        usage=command.usage,
    )
    return ([proposal] if settled else []), proposal_resource(proposal), proposal.version


def fail(app: WorldHistory, command: FailProposal) -> Decision:
    proposal = app.proposal(command.proposal_id)
    settled = proposal.fail(command.reason)
    return ([proposal] if settled else []), proposal_resource(proposal), proposal.version


def accept(app: WorldHistory, command: AcceptProposal) -> Decision:
    """Append the chosen edits as ordinary events caused by the proposal, or none at all."""
    proposal = _in_world(app, command.world_id, command.proposal_id)
    if proposal.status != "ready":
        raise Conflict(f"only a ready proposal can be accepted; this one is {proposal.status}")
    chosen = sorted(set(command.indexes)) if command.indexes is not None else None
    edits = [e for e in proposal.edits if chosen is None or e["index"] in chosen]
    unknown = set(chosen or []) - {e["index"] for e in proposal.edits}
    if unknown:
        raise InvalidCommand.field("indexes", f"no such edit: {sorted(unknown)}")
    world = app.world(command.world_id)
    branch = app.branch(world, proposal.branch)
    conflicts: list[dict[str, Any]] = []
    caused = replace(current_provenance(), causation_id=str(proposal.id), origin="ai-proposal")
    with recorded_by(caused):
        for edit in edits:
            try:
                apply_edit(branch, edit, world.calendar_rules, proposal.id)
            except DomainError as error:
                conflicts.append({"index": edit["index"], "reason": error.detail})
    if conflicts:
        raise ProposalConflict(
            f"{len(conflicts)} edit(s) no longer apply to the branch; nothing was appended",
            conflicts,
        )
    proposal.accept([e["index"] for e in edits])
    resource = {**proposal_resource(proposal), "accepted": [e["index"] for e in edits]}
    return [branch, proposal], resource, branch.head_version


def reject(app: WorldHistory, command: RejectProposal) -> Decision:
    proposal = _in_world(app, command.world_id, command.proposal_id)
    proposal.reject(command.reason)
    return [proposal], proposal_resource(proposal), proposal.version


def _in_world(app: WorldHistory, world_id: UUID, proposal_id: UUID) -> Proposal:
    proposal = app.proposal(proposal_id)
    if proposal.world_id != str(world_id):
        raise NotFound(f"proposal {proposal_id} does not exist in this world")
    return proposal


def proposal_resource(proposal: Proposal) -> dict[str, Any]:
    return {
        "id": str(proposal.id),
        "kind": proposal.kind,
        "branch": proposal.branch,
        "status": proposal.status,
        "version": proposal.version,
    }
