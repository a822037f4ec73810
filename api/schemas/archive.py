"""Query arguments and answer of the archive endpoints (the archive itself is NDJSON)."""

from __future__ import annotations

from marshmallow import Schema, fields

from api.schemas.worlds import WorldSchema


class ImportArgs(Schema):
    as_copy = fields.Boolean(
        load_default=False,
        metadata={"description": "import under new ids, with a new chain that says whence"},
    )


class ImportedWorldSchema(WorldSchema):
    events = fields.Integer(metadata={"description": "events stored by the import"})
    copied_from = fields.String(
        allow_none=True, metadata={"description": "the archive's world id, for a copy"}
    )
