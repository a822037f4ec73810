"""AI suggestions: request one, read proposals, accept or reject them."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import event

from api.commanding import execute, written
from api.idempotency import idempotent
from api.problems import ApiProblem
from api.reading import await_position
from api.schemas.proposals import (
    AcceptSchema,
    ProposalListArgs,
    ProposalPageSchema,
    ProposalSchema,
    RejectSchema,
    SuggestionRequestSchema,
)
from api.schemas.queries import ReadArgs
from api.security import authorize, current_user_id
from api.services import services
from commands.errors import NotFound
from commands.messages import AcceptProposal, FailProposal, RejectProposal, RequestSuggestion
from commands.provenance import Provenance
from queries import proposals as proposal_queries
from suggestions.dispatch import QueueUnavailable, broker_reachable, enqueue

blp = Blueprint("proposals", __name__, description="AI suggestions and their review")


def _unavailable(detail: str) -> ApiProblem:
    return ApiProblem(503, "Suggestions unavailable", detail, headers={"Retry-After": "5"})


def _queue(redis_url: str, proposal_id: UUID, actor: Provenance) -> bool:
    """Queue the proposal's task; when the broker is gone, record the proposal as failed."""
    try:
        enqueue(redis_url, str(proposal_id))
    except QueueUnavailable:
        reason = "could not be queued: the broker went away"
        services().history.handle(FailProposal(proposal_id, reason), actor)
        return False
    return True


@blp.route("/worlds/<uuid:world_id>/branches/<branch>/suggestions")
class Suggestions(MethodView):
    @idempotent
    @blp.arguments(SuggestionRequestSchema())
    @blp.response(202, ProposalSchema)
    def post(self, body: dict[str, Any], world_id: UUID, branch: str) -> Any:
        """Ask for a suggestion; answers 202 with the pending proposal and its URL."""
        authorize(world_id, "write")
        redis_url = services().config.redis_url
        if not redis_url or not broker_reachable(redis_url):
            raise _unavailable("the suggestion queue (Redis) is not reachable; retry shortly")
        params = {k.rstrip("_"): v for k, v in body.items() if k != "kind"}
        proposal_id = uuid4()
        outcome = execute(RequestSuggestion(world_id, branch, proposal_id, body["kind"], params))
        actor = Provenance(actor=current_user_id(), correlation_id=g.get("request_id"))
        session = g.get("command_session")
        if session is None:
            if not _queue(redis_url, proposal_id, actor):
                raise _unavailable("the suggestion queue went away; retry shortly")
        else:
            # With an Idempotency-Key the request commits after this view returns: a worker
            # must not get the task before the proposal exists (it would drop it).
            event.listen(
                session,
                "after_commit",
                lambda _: _queue(redis_url, proposal_id, actor),
                once=True,
            )
        url = f"/api/v1/worlds/{world_id}/proposals/{proposal_id}"
        result, _, headers = written(outcome, 202, url)
        headers.pop("ETag", None)
        return {**result, "url": url}, 202, headers


@blp.route("/worlds/<uuid:world_id>/proposals")
class Proposals(MethodView):
    @blp.arguments(ProposalListArgs(), location="query")
    @blp.response(200, ProposalPageSchema)
    def get(self, args: dict[str, Any], world_id: UUID) -> Any:
        """The world's proposals, oldest first; filter by `status` and `branch`."""
        authorize(world_id, "read")
        await_position(args.get("min_position"))
        with services().reads.connect() as conn:
            items, next_cursor = proposal_queries.proposals_of(
                conn,
                world_id,
                status=args.get("status"),
                branch=args.get("branch"),
                limit=args["limit"],
                cursor=args.get("cursor"),
            )
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/worlds/<uuid:world_id>/proposals/<uuid:proposal_id>")
class ProposalById(MethodView):
    @blp.arguments(ReadArgs(), location="query")
    @blp.response(200, ProposalSchema)
    def get(self, args: dict[str, Any], world_id: UUID, proposal_id: UUID) -> Any:
        """One proposal: its status, its edits and what was dropped and why."""
        authorize(world_id, "read")
        await_position(args.get("min_position"))
        with services().reads.connect() as conn:
            found = proposal_queries.proposal(conn, world_id, proposal_id)
        if found is None:
            raise NotFound(f"proposal {proposal_id} does not exist in this world")
        return found


@blp.route("/worlds/<uuid:world_id>/proposals/<uuid:proposal_id>/accept")
class Accept(MethodView):
    @idempotent
    @blp.arguments(AcceptSchema())
    @blp.response(200, ProposalSchema)
    def post(self, body: dict[str, Any], world_id: UUID, proposal_id: UUID) -> Any:
        """Append all edits (`{}`) or the chosen `indexes` as ordinary events; 409 if stale."""
        authorize(world_id, "write")
        return written(execute(AcceptProposal(world_id, proposal_id, body.get("indexes"))))


@blp.route("/worlds/<uuid:world_id>/proposals/<uuid:proposal_id>/reject")
class Reject(MethodView):
    @idempotent
    @blp.arguments(RejectSchema())
    @blp.response(200, ProposalSchema)
    def post(self, body: dict[str, Any], world_id: UUID, proposal_id: UUID) -> Any:
        """Reject a pending or ready proposal, with a reason."""
        authorize(world_id, "write")
        return written(execute(RejectProposal(world_id, proposal_id, body.get("reason"))))
