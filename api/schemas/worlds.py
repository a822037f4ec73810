"""Bodies of the world and member endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

ROLE_CHOICES = ("owner", "editor", "viewer", "auditor")


class MonthSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    days = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=1000))


class EraSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    start_year = fields.Integer(required=True, strict=True)


class CalendarSchema(Schema):
    months = fields.List(
        fields.Nested(MonthSchema), required=True, validate=validate.Length(min=1, max=100)
    )
    year_zero = fields.Boolean(load_default=False)
    eras = fields.List(
        fields.Nested(EraSchema), load_default=list, validate=validate.Length(max=100)
    )


class WorldCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(allow_none=True, validate=validate.Length(max=100_000))
    calendar = fields.Nested(CalendarSchema)


class WorldPatchSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(allow_none=True, validate=validate.Length(max=100_000))
    calendar = fields.Nested(CalendarSchema)


class WorldSchema(Schema):
    id = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    calendar = fields.Dict()
    default_branch = fields.String()
    created_at = fields.String()
    version = fields.Integer()
    position = fields.Integer(allow_none=True)


class MemberSchema(Schema):
    user_id = fields.String()
    role = fields.String()
    position = fields.Integer(allow_none=True)


class MemberListSchema(Schema):
    items = fields.List(fields.Nested(MemberSchema))
    next_cursor = fields.String(allow_none=True)


class MemberRoleSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ROLE_CHOICES))


class WorldListItemSchema(WorldSchema):
    role = fields.String()


class WorldPageSchema(Schema):
    items = fields.List(fields.Nested(WorldListItemSchema))
    next_cursor = fields.String(allow_none=True)


class ForkedFromSchema(Schema):
    branch = fields.String()
    version = fields.Integer()


class BranchSchema(Schema):
    name = fields.String()
    head_version = fields.Integer()
    forked_from = fields.Nested(ForkedFromSchema, allow_none=True)
    created_at = fields.String()


class BranchPageSchema(Schema):
    items = fields.List(fields.Nested(BranchSchema))
    next_cursor = fields.String(allow_none=True)
