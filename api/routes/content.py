"""The four content collections of a branch, served by one set of generic views."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from api import preconditions
from api.commanding import execute, written
from api.idempotency import idempotent
from api.listing import list_content
from api.reading import open_branch
from api.schemas.content import (
    DeletedSchema,
    ElementSchema,
    LocationSchema,
    RemoveArgsSchema,
    TimelineEventSchema,
    TimelineSchema,
)
from api.schemas.queries import ContentListArgs, ElementReadArgs, ReadArgs
from api.security import authorize
from api.services import services
from commands.errors import NotFound
from commands.messages import AddEntity, RemoveEntity, UpdateEntity
from queries import content

blp = Blueprint("content", __name__, description="Locations, elements, timelines, events")

COLLECTIONS: dict[str, tuple[str, type[Schema]]] = {
    # URL segment: (collection on the write side, schema)
    "locations": ("locations", LocationSchema),
    "elements": ("elements", ElementSchema),
    "timelines": ("timelines", TimelineSchema),
    "timeline-events": ("timeline_events", TimelineEventSchema),
}
PAGE_SCHEMAS: dict[str, type[Schema]] = {}


def plain(value: Any) -> Any:
    """Request data as the write side takes it: UUIDs as strings, None-valued date parts gone."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _register(segment: str, collection: str, schema: type[Schema]) -> None:
    base = f"/worlds/<uuid:world_id>/branches/<branch>/{segment}"
    list_schema = type(
        f"{schema.__name__.removesuffix('Schema')}PageSchema",
        (Schema,),
        {
            "items": fields.List(fields.Nested(schema)),
            "next_cursor": fields.String(allow_none=True),
        },
    )
    PAGE_SCHEMAS[collection] = list_schema
    patch_schema = type(f"{schema.__name__.removesuffix('Schema')}PatchSchema", (schema,), {})
    label = segment.replace("-", " ")

    class Collection(MethodView):
        @blp.arguments(ContentListArgs(), location="query")
        @blp.response(200, list_schema)
        def get(self, args: dict[str, Any], world_id: UUID, branch: str) -> Any:
            read = open_branch(world_id, branch, args)
            return list_content(read, collection, args)

        @idempotent
        @blp.arguments(schema())
        @blp.response(201, schema)
        def post(self, body: dict[str, Any], world_id: UUID, branch: str) -> Any:
            authorize(world_id, "write")
            entity_id = str(uuid4())
            outcome = execute(AddEntity(world_id, branch, collection, entity_id, plain(body)))
            location = f"/api/v1/worlds/{world_id}/branches/{branch}/{segment}/{entity_id}"
            return written(outcome, 201, location)

    class Item(MethodView):
        @blp.arguments(
            ElementReadArgs() if collection == "elements" else ReadArgs(), location="query"
        )
        @blp.response(200, schema)
        def get(self, args: dict[str, Any], world_id: UUID, branch: str, entity_id: UUID) -> Any:
            read = open_branch(world_id, branch, args)
            with services().reads.connect() as conn:
                found = content.get_entity(conn, read.branch_id, collection, entity_id, read.as_of)
                if found is not None and "at" in args:
                    calendar = read.world.calendar_rules
                    until = calendar.ordinal(calendar.check(args["at"], "at"), end_of_period=True)
                    found["timeline_events"] = content.events_involving(
                        conn, read.branch_id, entity_id, until, read.as_of
                    )
            if found is None:
                raise NotFound(f"{label[:-1]} {entity_id} does not exist on this branch")
            return preconditions.read(found)

        @blp.arguments(patch_schema(partial=True))
        @blp.response(200, schema)
        def patch(self, body: dict[str, Any], world_id: UUID, branch: str, entity_id: UUID) -> Any:
            authorize(world_id, "write")
            command = UpdateEntity(
                world_id,
                branch,
                collection,
                str(entity_id),
                plain(body),
                preconditions.expected_version(),
            )
            return written(execute(command))

        @blp.arguments(RemoveArgsSchema(), location="query")
        @blp.response(200, DeletedSchema)
        def delete(self, args: dict[str, Any], world_id: UUID, branch: str, entity_id: UUID) -> Any:
            authorize(world_id, "write")
            command = RemoveEntity(
                world_id,
                branch,
                collection,
                str(entity_id),
                preconditions.expected_version(),
                args["cascade"],
            )
            outcome = execute(command)
            return written(outcome)

    Collection.get.__doc__ = (
        f"A page of the branch's {label}, filtered; `as_of_version` reads an earlier version."
    )
    Collection.post.__doc__ = f"Add one of the branch's {label}."
    Item.get.__doc__ = f"One of the branch's {label} (`as_of_version` for an earlier state)."
    Item.patch.__doc__ = (
        f"Change fields of one of the branch's {label}; `null` clears an optional field, "
        "`metadata` is an RFC 7386 merge patch. Honours `If-Match`."
    )
    Item.delete.__doc__ = (
        f"Remove one of the branch's {label}; `cascade=true` also removes or unlinks what "
        "refers to it. Honours `If-Match`."
    )
    Collection.__name__ = f"{collection.title().replace('_', '')}Collection"
    Item.__name__ = f"{collection.title().replace('_', '')}Item"
    blp.route(base, endpoint=f"{collection}_collection")(Collection)
    blp.route(f"{base}/<uuid:entity_id>", endpoint=f"{collection}_item")(Item)


for _segment, (_collection, _schema) in COLLECTIONS.items():
    _register(_segment, _collection, _schema)
