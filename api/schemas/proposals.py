"""Bodies of the suggestion and proposal endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas.queries import InWorldDate
from commands.proposal import KINDS

STATUSES = ("pending", "ready", "failed", "accepted", "rejected")


class SuggestionRequestSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    prompt = fields.String(validate=validate.Length(min=1, max=4000))
    target = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "an entity to expand, as `collection/id`"},
    )
    from_ = InWorldDate(data_key="from")
    to = InWorldDate()


class ProposalSchema(Schema):
    id = fields.String()
    kind = fields.String()
    branch = fields.String()
    status = fields.String()
    params = fields.Dict()
    edits = fields.List(fields.Dict())
    dropped = fields.List(fields.Dict())
    flags = fields.List(fields.Dict())
    provider = fields.String(allow_none=True)
    model = fields.String(allow_none=True)
    prompt_version = fields.String(allow_none=True)
    usage = fields.Dict()
    reason = fields.String(allow_none=True)
    accepted = fields.List(fields.Integer(), allow_none=True)
    requested_by = fields.String()
    reviewed_by = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    version = fields.Integer()
    position = fields.Integer(allow_none=True)
    url = fields.String()


class ProposalPageSchema(Schema):
    items = fields.List(fields.Nested(ProposalSchema))
    next_cursor = fields.String(allow_none=True)


class ProposalListArgs(Schema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    branch = fields.String(validate=validate.Length(min=1, max=100))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(validate=validate.Length(max=1000))
    min_position = fields.Integer(validate=validate.Range(min=0))


class AcceptSchema(Schema):
    indexes = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=0)),
        validate=validate.Length(min=1, max=1000),
    )


class RejectSchema(Schema):
    reason = fields.String(allow_none=True, validate=validate.Length(max=2000))
