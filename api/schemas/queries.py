"""Query-string arguments of the read endpoints."""

from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from commands.dates import parse_query_date
from commands.validation import nul_path


class JsonObject(fields.Field):
    """A URL-encoded JSON object, e.g. `metadata={"faction":"red"}`."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            parsed = json.loads(value)
        except (TypeError, ValueError):
            raise ValidationError("must be a URL-encoded JSON object") from None
        if not isinstance(parsed, dict):
            raise ValidationError("must be a JSON object")
        if nul_path(parsed):  # PostgreSQL cannot compare text holding NUL
            raise ValidationError("must not contain NUL characters")
        return parsed


class InWorldDate(fields.Field):
    """`YEAR[-MONTH[-DAY]]`, e.g. `-130`, `-130-03`, `412-11-02`."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return parse_query_date(str(value))
        except ValueError as error:
            raise ValidationError(str(error)) from None


class ParentFilter(fields.Field):
    """A location id, or `null` for the roots of the tree."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value == "null":
            return "null"
        return str(fields.UUID().deserialize(value))


class ReadArgs(Schema):
    min_position = fields.Integer(
        validate=validate.Range(min=0), metadata={"description": "wait until projected"}
    )
    as_of_version = fields.Integer(
        validate=validate.Range(min=0), metadata={"description": "read the branch as of N"}
    )


class ElementReadArgs(ReadArgs):
    at = InWorldDate(
        metadata={"description": "also list the timeline events involving it up to this date"}
    )


class PageArgs(ReadArgs):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(validate=validate.Length(max=1000))


class ContentListArgs(PageArgs):
    kind = fields.String(validate=validate.Length(min=1, max=200))
    tag = fields.String(validate=validate.Length(min=1, max=200))
    parent_id = ParentFilter()
    timeline_id = fields.UUID()
    element_id = fields.UUID()
    location_id = fields.UUID()
    q = fields.String(validate=validate.Length(min=1, max=500))
    metadata = JsonObject()
    from_ = InWorldDate(data_key="from")
    to = InWorldDate()


class SearchArgs(PageArgs):
    q = fields.String(required=True, validate=validate.Length(min=1, max=500))


class WorldListArgs(Schema):
    min_position = fields.Integer(validate=validate.Range(min=0))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(validate=validate.Length(max=1000))
