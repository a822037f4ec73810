"""`Idempotency-Key` for a POST whose body is read as a stream, never buffered whole.

The fingerprint is the one `api.idempotency` takes (method, path, query and body, hashed),
computed over the body as the view reads it. A key seen before is answered once the body
has been read to its end: the first response if the fingerprints match, 422 if not. A new
key is recorded by `record`, inside the transaction that records the request's events.
"""

from __future__ import annotations

import hashlib
from typing import IO, Any
from uuid import UUID

from flask import Response, request
from sqlalchemy import Connection

from api.idempotency import REPLAYED_HEADERS, check_key, replayed, stored
from api.tables import idempotency_keys

DRAIN_CHUNK = 1024 * 1024


class FingerprintedBody:
    """The request body as a line-readable stream that hashes what passes through it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._digest = hashlib.sha256(
            f"{request.method} {request.path}?{request.query_string.decode()}\n".encode()
        )

    def readline(self, size: int = -1, /) -> bytes:
        data = self._stream.readline(size)
        self._digest.update(data)
        return data

    def drain(self, limit: int | None = None) -> None:
        """Read (and hash) the rest of the body, or at most `limit` more bytes of it."""
        left = limit
        while left is None or left > 0:
            chunk = self._stream.read(DRAIN_CHUNK if left is None else min(left, DRAIN_CHUNK))
            if not chunk:
                return
            self._digest.update(chunk)
            if left is not None:
                left -= len(chunk)

    @property
    def fingerprint(self) -> str:
        return self._digest.hexdigest()


class StreamedIdempotency:
    """One request's key; `key` is None when the request has none (nothing is recorded)."""

    def __init__(self, user_id: str, body: FingerprintedBody) -> None:
        self.user_id = UUID(user_id)
        self.body = body
        self.key = request.headers.get("Idempotency-Key")
        if self.key is not None:
            check_key(self.key)

    def earlier(self) -> Response | None:
        """The first response to this key (reading the body to compare), else None."""
        if self.key is None or self._row() is None:
            return None
        self.body.drain()
        return self.replay()

    def replay(self) -> Response | None:
        row = self._row()
        return None if row is None else replayed(row, self.body.fingerprint)

    def record(
        self, conn: Connection, status: int, body: dict[str, Any], headers: dict[str, str]
    ) -> None:
        if self.key is None:
            return
        conn.execute(
            idempotency_keys.insert().values(
                user_id=self.user_id,
                key=self.key,
                request_hash=self.body.fingerprint,
                status_code=status,
                body=body,
                headers={h: headers[h] for h in REPLAYED_HEADERS if h in headers},
            )
        )

    def _row(self) -> Any:
        return None if self.key is None else stored(self.user_id, self.key)
