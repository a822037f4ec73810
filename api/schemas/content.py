"""Bodies of the four content collections of a branch."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

NAME = validate.Length(min=1, max=200)
TEXT = validate.Length(max=100_000)


class DateSchema(Schema):
    year = fields.Integer(required=True, strict=True)
    month = fields.Integer(strict=True, allow_none=True)
    day = fields.Integer(strict=True, allow_none=True)


class _Written(Schema):
    id = fields.String(dump_only=True)
    version = fields.Integer(dump_only=True)
    position = fields.Integer(dump_only=True, allow_none=True)


class LocationSchema(_Written):
    name = fields.String(required=True, validate=NAME)
    kind = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=TEXT)
    parent_id = fields.UUID(allow_none=True)
    metadata = fields.Dict(keys=fields.String())


class InvolvementSchema(Schema):
    id = fields.String()
    title = fields.String()
    timeline_id = fields.String()
    start = fields.Dict()
    end = fields.Dict(allow_none=True)


class ElementSchema(_Written):
    timeline_events = fields.List(
        fields.Nested(InvolvementSchema),
        dump_only=True,
        metadata={"description": "with `at`: the timeline events involving it up to then"},
    )
    kind = fields.String(required=True, validate=NAME)
    name = fields.String(required=True, validate=NAME)
    summary = fields.String(allow_none=True, validate=TEXT)
    tags = fields.List(fields.String(validate=NAME), validate=validate.Length(max=100))
    metadata = fields.Dict(keys=fields.String())


class TimelineSchema(_Written):
    name = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=TEXT)


class TimelineEventSchema(_Written):
    timeline_id = fields.UUID(required=True)
    title = fields.String(required=True, validate=NAME)
    description = fields.String(allow_none=True, validate=TEXT)
    start = fields.Nested(DateSchema, required=True)
    end = fields.Nested(DateSchema, allow_none=True)
    location_id = fields.UUID(allow_none=True)
    element_ids = fields.List(fields.UUID(), validate=validate.Length(max=1000))
    metadata = fields.Dict(keys=fields.String())


class DeletedSchema(Schema):
    id = fields.String()
    version = fields.Integer()
    position = fields.Integer(allow_none=True)


class RemoveArgsSchema(Schema):
    cascade = fields.Boolean(load_default=False)


class SearchHitSchema(Schema):
    collection = fields.String()
    id = fields.String()
    title = fields.String()
    version = fields.Integer()
    rank = fields.Float()


class SearchPageSchema(Schema):
    items = fields.List(fields.Nested(SearchHitSchema))
    next_cursor = fields.String(allow_none=True)
