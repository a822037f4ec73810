"""Query arguments and bodies of the change log, entity history and chain verification."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.schemas.queries import PageArgs


class ChangeLogArgs(PageArgs):
    actor = fields.String(
        validate=validate.Length(min=1, max=200), metadata={"description": "user id of the actor"}
    )
    entity_id = fields.UUID(metadata={"description": "changes of this entity only"})
    type = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "event type, e.g. `LocationUpdated`"},
    )
    since = fields.AwareDateTime(
        default_timezone=UTC,
        metadata={"description": "recorded at or after (ISO 8601; UTC when no offset)"},
    )
    until = fields.AwareDateTime(
        default_timezone=UTC,
        metadata={"description": "recorded before (ISO 8601; UTC when no offset)"},
    )
    after_version = fields.Integer(
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={"description": "versions after this one"},
    )

    @validates_schema
    def _ordered_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "since" in data and "until" in data and data["until"] < data["since"]:
            raise ValidationError("must not be before since", "until")


class ChangeLogEntrySchema(Schema):
    version = fields.Integer()
    position = fields.Integer()
    type = fields.String()
    branch = fields.String(metadata={"description": "the branch whose stream recorded it"})
    collection = fields.String(allow_none=True)
    entity_id = fields.String(allow_none=True)
    actor = fields.String()
    recorded_at = fields.String(metadata={"format": "date-time"})
    command_id = fields.String(allow_none=True)
    correlation_id = fields.String(allow_none=True)
    causation_id = fields.String(allow_none=True)
    hash = fields.String()
    prev_hash = fields.String()
    data = fields.Dict(keys=fields.String())


class ChangeLogPageSchema(Schema):
    items = fields.List(fields.Nested(ChangeLogEntrySchema))
    next_cursor = fields.String(allow_none=True)


class FieldChangeSchema(Schema):
    before = fields.Raw(allow_none=True)
    after = fields.Raw(allow_none=True)


class EntityChangeSchema(Schema):
    version = fields.Integer()
    position = fields.Integer()
    type = fields.String()
    branch = fields.String(metadata={"description": "the branch whose stream recorded it"})
    actor = fields.String()
    recorded_at = fields.String(metadata={"format": "date-time"})
    command_id = fields.String(allow_none=True)
    correlation_id = fields.String(allow_none=True)
    causation_id = fields.String(allow_none=True)
    changes = fields.Dict(keys=fields.String(), values=fields.Nested(FieldChangeSchema))


class EntityHistoryPageSchema(Schema):
    items = fields.List(fields.Nested(EntityChangeSchema))
    next_cursor = fields.String(allow_none=True)


class VerifySchema(Schema):
    valid = fields.Boolean(metadata={"description": "every event of the branch's lineage verifies"})
    checked = fields.Integer(metadata={"description": "events of the branch's lineage checked"})
    first_invalid_version = fields.Integer(allow_none=True)
    world_valid = fields.Boolean(metadata={"description": "the world's own stream verifies"})
    world_checked = fields.Integer()
