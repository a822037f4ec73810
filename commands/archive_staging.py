"""Staging an import's events: one COPY that runs while the archive is still being verified.

`StagingCopy` opens a single `COPY archive_import (...) FROM STDIN` on the import's own
connection, in a thread of its own, and feeds it the staged rows in chunks through a small
bounded queue. psycopg2 lets go of the GIL while it sends a chunk and while the server
works, so the server parses and stores rows (on another core) while this process verifies
the next lines, instead of the two taking turns. The queue holds at most `DEPTH` chunks of
about `CHUNK_BYTES` each, so memory stays bounded however long the archive is.

Nothing about the transaction changes: the rows land in the import's temporary table, in
archive order, and become events only when the import publishes them. The caller's thread
does not touch the connection until `finish` (or `abort`) has ended the COPY; a refused
archive aborts it and the caller rolls the transaction back.
"""

from __future__ import annotations

import queue
import threading
from functools import lru_cache
from typing import Any
from uuid import UUID

from commands.archive_tables import staged

CHUNK_BYTES = 128 * 1024  # rows sent to the server at a time
DEPTH = 4  # chunks waiting for the server, at most
POLL_SECONDS = 0.1  # how often a blocked sender looks whether the COPY died
COLUMNS = "originator_id, originator_version, topic, state"


class StagingAborted(Exception):
    """Raised inside the COPY (and so sent to the server) when the caller gives up."""


class StagingCopy:
    """One COPY into the staging table, fed row by row from the caller's thread."""

    def __init__(self, dbapi_connection: Any) -> None:
        self._cursor = dbapi_connection.cursor()
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=DEPTH)
        self._rows: list[str] = []
        self._ids: dict[UUID | str, str] = {}
        self._size = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="archive-staging", daemon=True)
        self._thread.start()

    def add(
        self, originator_id: UUID | str, originator_version: int, topic: str, state: bytes
    ) -> None:
        """Stage one event (rows are sent in chunks, in the order they were added)."""
        stream = self._ids.get(originator_id)
        if stream is None:  # a stream's id is written once per stream, not once per event
            stream = self._ids[originator_id] = str(originator_id)
        row = f"{stream}\t{originator_version}\t{_copy_text(topic)}\t\\\\x{state.hex()}\n"
        self._rows.append(row)
        self._size += len(row)
        if self._size >= CHUNK_BYTES:
            self._flush()

    def finish(self) -> None:
        """Send what is left, end the COPY and wait for the server; raise what it raised."""
        try:
            self._flush()
            self._send(None)
        except BaseException:
            self.abort()
            raise
        self._thread.join()
        self._cursor.close()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Give up: the server abandons the COPY (the caller rolls back); never raises."""
        self._rows, self._size = [], 0
        if self._thread.is_alive():
            while True:
                try:
                    self._chunks.put(b"", timeout=POLL_SECONDS)  # b"": read() raises
                    break
                except queue.Full:
                    if not self._thread.is_alive():
                        break
            self._thread.join()
        self._cursor.close()

    def _flush(self) -> None:
        if self._rows:
            chunk = "".join(self._rows).encode()
            self._rows, self._size = [], 0
            self._send(chunk)

    def _send(self, chunk: bytes | None) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._chunks.put(chunk, timeout=POLL_SECONDS)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    raise self._error or RuntimeError("the staging COPY ended early") from None

    def _run(self) -> None:
        try:
            self._cursor.copy_expert(
                f"COPY {staged.name} ({COLUMNS}) FROM STDIN", _Reader(self._chunks)
            )
        except BaseException as error:  # handed to the caller's thread
            self._error = error


class _Reader:
    """The file psycopg2 reads the COPY's data from: the queued chunks, then EOF."""

    def __init__(self, chunks: queue.Queue[bytes | None]) -> None:
        self._chunks = chunks

    def read(self, size: int = -1) -> bytes:
        chunk = self._chunks.get()
        if chunk is None:
            return b""
        if not chunk:
            raise StagingAborted("the import was refused")
        return chunk


@lru_cache(maxsize=256)
def _copy_text(value: str) -> str:
    """A text value in COPY's text format (topics repeat: each is escaped once)."""
    return (
        value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )
