"""Bodies of the branch endpoints: fork, compare, merge, revert."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas.worlds import ForkedFromSchema

BRANCH_NAME = validate.Regexp(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
    error="1-100 letters, digits, '.', '_' or '-', starting with a letter or digit",
)


class ForkSchema(Schema):
    name = fields.String(required=True, validate=BRANCH_NAME)
    from_ = fields.String(data_key="from", load_default="main", validate=validate.Length(max=100))
    at_version = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=0))


class ForkedSchema(Schema):
    name = fields.String()
    head_version = fields.Integer()
    forked_from = fields.Nested(ForkedFromSchema, allow_none=True)
    position = fields.Integer(allow_none=True)


class CompareArgs(Schema):
    base = fields.String(required=True, validate=validate.Length(min=1, max=120))
    head = fields.String(required=True, validate=validate.Length(min=1, max=120))


class AncestorSchema(Schema):
    branch = fields.String()
    version = fields.Integer()


class ChangeSchema(Schema):
    entity_id = fields.String()
    collection = fields.String()
    change = fields.String()
    fields_ = fields.Dict(data_key="fields", attribute="fields")


class ComparisonSchema(Schema):
    base = fields.String()
    head = fields.String()
    ancestor = fields.Nested(AncestorSchema)
    changes = fields.List(fields.Nested(ChangeSchema))


class MergeSchema(Schema):
    source = fields.String(required=True, validate=validate.Length(min=1, max=100))
    dry_run = fields.Boolean(load_default=False)


class EditSchema(Schema):
    entity_id = fields.String()
    collection = fields.String()
    change = fields.String()
    fields_ = fields.Dict(data_key="fields", attribute="fields", allow_none=True)


class MergedSchema(Schema):
    target = fields.String()
    source = fields.String()
    ancestor = fields.Nested(AncestorSchema)
    dry_run = fields.Boolean()
    edits = fields.List(fields.Nested(EditSchema))
    events = fields.Integer()
    head_version = fields.Integer()
    position = fields.Integer(allow_none=True)


class RevertSchema(Schema):
    to_version = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class RevertedSchema(Schema):
    name = fields.String()
    head_version = fields.Integer()
    forked_from = fields.Nested(ForkedFromSchema, allow_none=True)
    reverted_to = fields.Integer()
    events = fields.Integer()
    position = fields.Integer(allow_none=True)
