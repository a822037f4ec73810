"""Archives: a world's whole history as NDJSON, out and back in.

`GET /worlds/{w}/export` (owners and auditors) streams the archive described in
`commands.archive_format`, read from one database snapshot a page at a time.

`POST /worlds/import` (anyone signed in) takes an archive as the raw request body (send it
as `application/x-ndjson`; form uploads are refused with 415) and verifies it line by line
as it arrives, so memory does not grow with its size. This route alone accepts bodies up to
IMPORT_MAX_BYTES (default 1 GiB; beyond it, 413) instead of the 1 MiB MAX_BODY_BYTES of the
others; a proxy in front must allow as much, and a server worker timeout must allow for the
upload (gunicorn's default is 30 s). `?as_copy=true` imports under new ids with a new chain
(`commands.archive_copy`). The importer becomes an owner (`commands.archive_import`).
Answers: 201 with the world, `events`, `position` (and X-Position, Location); 422 with the
failing `line` (also in `errors.line`); 409 when the world exists here already. The
Idempotency-Key header works as on every POST.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

from flask import Response, g, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from api.commanding import written
from api.problems import ApiProblem
from api.schemas.archive import ImportArgs, ImportedWorldSchema
from api.security import authorize, current_user_id
from api.services import services
from api.streamed_idempotency import FingerprintedBody, StreamedIdempotency
from commands.application import Outcome, world_resource
from commands.archive_export import export_archive
from commands.archive_format import MEDIA_TYPE, ArchiveError, read_lines
from commands.archive_import import ImportedWorld, import_archive
from commands.errors import DomainError
from commands.provenance import Provenance

blp = Blueprint("archive", __name__, description="Export and import of whole worlds")

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
DRAIN_ON_REFUSAL = 16 * 1024 * 1024  # read this much more so the client sees the answer


@blp.route("/worlds/<uuid:world_id>/export")
class WorldExport(MethodView):
    @blp.response(
        200,
        {"type": "string", "format": "binary"},
        content_type=MEDIA_TYPE,
        description="A header line, then every event of the world stream and each branch",
    )
    def get(self, world_id: UUID) -> Any:
        """Every event of every branch of the world, with hashes, as NDJSON (owners, auditors)."""
        authorize(world_id, "audit")
        svc = services()
        lines = export_archive(svc.engine, svc.history.mapper, world_id)
        header = next(lines)  # the snapshot is open and the world found before the 200 goes
        return Response(
            stream_with_context(_then(header, lines)),
            mimetype=MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="world-{world_id}.ndjson"'},
        )


@blp.route("/worlds/import")
class WorldImport(MethodView):
    @blp.arguments(ImportArgs(), location="query")
    @blp.response(201, ImportedWorldSchema)
    @blp.doc(
        requestBody={
            "required": True,
            "content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    )
    def post(self, args: dict[str, Any]) -> Any:
        """Recreate a world from its archive, with its ids (`as_copy=true`: under new ones)."""
        user_id = current_user_id()
        if request.mimetype in FORM_TYPES:
            raise ApiProblem(
                415, "Unsupported Media Type", f"send the archive as the body, as {MEDIA_TYPE}"
            )
        svc = services()
        request.max_content_length = svc.config.import_max_bytes
        body = FingerprintedBody(request.stream)
        idempotency = StreamedIdempotency(user_id, body)
        earlier = idempotency.earlier()
        if earlier is not None:
            return earlier
        importer = Provenance(
            actor=user_id, command_id=str(uuid4()), correlation_id=g.get("request_id")
        )

        def record(conn: Any, imported: ImportedWorld) -> None:
            answer, status, headers = _answer(imported)
            idempotency.record(conn, status, ImportedWorldSchema().dump(answer), headers)

        try:
            imported = import_archive(
                svc.history,
                svc.engine,
                read_lines(body),
                importer,
                as_copy=args["as_copy"],
                before_commit=record,
            )
        except ArchiveError as error:
            _drain_quietly(body)
            raise ApiProblem(
                422,
                error.title,
                error.detail,
                kind="invalid-archive",
                errors=error.errors,
                line=error.line,
            ) from None
        except DomainError:
            _drain_quietly(body)
            raise
        except IntegrityError:  # the same Idempotency-Key, recorded meanwhile
            replayed = idempotency.replay()
            if replayed is None:
                raise
            return replayed
        return _answer(imported)


def _answer(imported: ImportedWorld) -> tuple[Any, ...]:
    world = imported.world
    resource = {
        **world_resource(world),
        "events": imported.events,
        "copied_from": str(imported.copied_from) if imported.copied_from else None,
    }
    outcome = Outcome(resource=resource, version=world.version, position=imported.position)
    return written(outcome, 201, f"/api/v1/worlds/{world.id}")


def _drain_quietly(body: FingerprintedBody) -> None:
    """Read some more of a refused upload, so that the client is still listening for the answer."""
    with contextlib.suppress(HTTPException):  # past the limit, or the client has gone
        body.drain(DRAIN_ON_REFUSAL)


def _then(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest
