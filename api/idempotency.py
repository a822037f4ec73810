"""`Idempotency-Key` on POST: a retry gets the first response and records nothing new.

The first response is stored in the same database transaction as the command's events,
so a crash between the two is impossible: either both are committed or neither is.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from flask import Response, current_app, g, json, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.problems import ApiProblem
from api.security import current_user_id
from api.services import services
from api.tables import idempotency_keys

REPLAYED_HEADERS = ("Location", "ETag", "X-Position")


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        check_key(key)
        user_id = UUID(current_user_id())
        fingerprint = _fingerprint()
        earlier = _replay(user_id, key, fingerprint)
        if earlier is not None:
            return earlier
        engine = services().engine
        with Session(engine) as session:
            g.command_session = session
            try:
                response = current_app.make_response(view(*args, **kwargs))
            finally:
                g.command_session = None
            try:
                if response.status_code < 300:
                    session.execute(
                        idempotency_keys.insert().values(
                            user_id=user_id,
                            key=key,
                            request_hash=fingerprint,
                            status_code=response.status_code,
                            body=response.get_json(silent=True) or {},
                            headers={
                                h: response.headers[h]
                                for h in REPLAYED_HEADERS
                                if h in response.headers
                            },
                        )
                    )
                session.commit()
            except IntegrityError:
                # A concurrent request with the same key won: drop our events, answer as it did.
                session.rollback()
                replayed = _replay(user_id, key, fingerprint)
                if replayed is None:
                    raise
                return replayed
        return response

    return wrapper


def _fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}?{request.query_string.decode()}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def check_key(key: str) -> None:
    """Refuse an `Idempotency-Key` that is empty, too long or not printable (422)."""
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ApiProblem(
            422,
            "Validation failed",
            "Idempotency-Key must be 1-255 printable characters",
            errors={"Idempotency-Key": ["must be 1-255 printable characters"]},
        )


def stored(user_id: UUID, key: str) -> Any:
    """The recorded first response to `key` (its row), forgetting one past its lifetime."""
    cutoff = datetime.now(UTC) - timedelta(seconds=services().config.idempotency_ttl)
    keyed = (idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
    with services().engine.begin() as conn:
        conn.execute(delete(idempotency_keys).where(*keyed, idempotency_keys.c.created_at < cutoff))
        return conn.execute(select(idempotency_keys).where(*keyed)).mappings().first()


def replayed(row: Any, fingerprint: str) -> Response:
    """The recorded response again, or 422 when the key came with a different request."""
    if row["request_hash"] != fingerprint:
        raise ApiProblem(
            422,
            "Idempotency key reused",
            "this Idempotency-Key was already used with a different request",
            errors={"Idempotency-Key": ["already used with a different request body"]},
        )
    response = Response(
        json.dumps(row["body"]), status=row["status_code"], mimetype="application/json"
    )
    for name, value in row["headers"].items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _replay(user_id: UUID, key: str, fingerprint: str) -> Response | None:
    row = stored(user_id, key)
    return None if row is None else replayed(row, fingerprint)
