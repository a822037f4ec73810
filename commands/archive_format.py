"""The archive format: every event of one world as NDJSON (`application/x-ndjson`).

Line 1 is the header; it names the world and lists its streams, the world's own first, then
each branch in the order the world registered it (so a fork always follows its parent):

    {"format": "space-pearl-archive", "version": 1, "world_id": W,
     "streams": [{"stream_id": W, "kind": "world", "events": 9, "head_hash": H},
                 {"stream_id": B, "kind": "branch", "name": "main", "events": 40,
                  "head_hash": H2}, ...]}

Then one line per stored event, stream after stream in that order, each in version order:

    {"stream_id", "stream_version", "topic", "state", "hash", "prev_hash"}

`state` is the stored state as the application's transcoder wrote it (UUIDs and datetimes as
`{"_type_": ..., "_data_": ...}`, chain and provenance in `hash`, `prev_hash` and `meta`);
`hash` and `prev_hash` repeat the chain for readers. The header's event counts and head
hashes let an importer notice an archive cut short at a line boundary.

Proposals (AI suggestions) are aggregates of their own, not branches, and are not part of an
archive; the edits accepted from them are, as the ordinary branch events they became (their
`meta.causation_id` still names the proposal).

Every line is canonical JSON (sorted keys, no spaces, UTF-8 rather than escapes) ending in
a newline. Global positions are left out, since they belong to one instance: an archive
depends only on the world's events, so export, import elsewhere and export again gives the
same bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol
from uuid import UUID

from commands.errors import InvalidCommand

FORMAT = "space-pearl-archive"
VERSION = 1
MEDIA_TYPE = "application/x-ndjson"
MAX_LINE_BYTES = 4 * 1024 * 1024  # a line holds one event: far more than any event needs
EVENT_KEYS = frozenset({"stream_id", "stream_version", "topic", "state", "hash", "prev_hash"})
HEADER_KEYS = frozenset({"format", "version", "world_id", "streams"})
_HASH = re.compile(r"[0-9a-f]{64}")
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class ArchiveError(InvalidCommand):
    """The archive is malformed or does not verify; `line` is the line that failed (from 1)."""

    title = "Invalid archive"

    def __init__(self, line: int, reason: str) -> None:
        super().__init__({"line": [f"{line}: {reason}"]}, f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class StreamEntry:
    """One stream as the header lists it."""

    stream_id: UUID
    kind: str  # "world" or "branch"
    name: str | None  # the branch name; None for the world stream
    events: int
    head_hash: str

    def describe(self) -> str:
        return "the world stream" if self.kind == "world" else f"branch {self.name!r}"

    def as_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "stream_id": str(self.stream_id),
            "kind": self.kind,
            "events": self.events,
            "head_hash": self.head_hash,
        }
        if self.name is not None:
            entry["name"] = self.name
        return entry


@dataclass(frozen=True)
class Header:
    world_id: UUID
    streams: tuple[StreamEntry, ...]

    @property
    def branches(self) -> tuple[StreamEntry, ...]:
        return self.streams[1:]


@dataclass(slots=True)  # not frozen: one is made per line, and frozen fields cost 5x to set
class EventLine:
    """An event line, parsed but not yet trusted."""

    line: int
    stream_id: UUID
    stream_version: int
    topic: str
    state: dict[str, Any]
    hash: str
    prev_hash: str


Loads = Callable[[bytes], Any]


class ReadsLines(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


def canonical_line(value: Any) -> bytes:
    """One archive line: sorted keys, no whitespace, UTF-8, a final newline."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode() + b"\n"


def header_line(header: Header) -> bytes:
    return canonical_line(
        {
            "format": FORMAT,
            "version": VERSION,
            "world_id": str(header.world_id),
            "streams": [entry.as_json() for entry in header.streams],
        }
    )


def event_line(stream_id: UUID, stream_version: int, topic: str, state: dict[str, Any]) -> bytes:
    """The line of a stored event whose state (decrypted, decompressed) is `state`."""
    return canonical_line(
        {
            "stream_id": str(stream_id),
            "stream_version": stream_version,
            "topic": topic,
            "state": state,
            "hash": state.get("hash"),
            "prev_hash": state.get("prev_hash"),
        }
    )


def read_lines(stream: ReadsLines, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """The lines of an archive as they arrive, none longer than `max_line_bytes`."""
    number = 0
    while True:
        raw = stream.readline(max_line_bytes + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_line_bytes:
            raise ArchiveError(number, f"the line is longer than {max_line_bytes} bytes")
        yield raw


def _json_object(raw: bytes, line: int, loads: Loads = json.loads) -> dict[str, Any]:
    if raw[:1] != b"{" and not raw.strip():
        raise ArchiveError(line, "empty line")
    try:
        value = loads(raw)
    except UnicodeDecodeError:
        raise ArchiveError(line, "not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ArchiveError(line, f"not valid JSON ({error.msg}; cut short?)") from None
    except RecursionError:
        raise ArchiveError(line, "JSON nested too deeply") from None
    except Exception as error:  # a transcoder's refusal of a typed value (`_type_`)
        raise ArchiveError(line, f"a value cannot be decoded ({error})") from None
    if not isinstance(value, dict):
        raise ArchiveError(line, "not a JSON object")
    return value


def _exact_keys(value: dict[str, Any], expected: frozenset[str], line: int, what: str) -> None:
    if value.keys() == expected:
        return
    missing, unknown = expected - value.keys(), value.keys() - expected
    if missing:
        raise ArchiveError(line, f"{what} lacks {', '.join(sorted(missing))}")
    if unknown:
        raise ArchiveError(line, f"{what} has unknown keys: {', '.join(sorted(unknown))}")


def canonical_uuid(value: Any) -> UUID | None:
    """The UUID a string spells in its canonical form (lower case, hyphens), else None."""
    if not isinstance(value, str) or not CANONICAL_UUID.fullmatch(value):
        return None
    return _uuid(value)


@lru_cache(maxsize=256)
def _uuid(value: str) -> UUID:
    return UUID(value)


_stream_uuid = lru_cache(maxsize=256)(canonical_uuid)  # repeats on every line of its stream


def is_hash(value: Any) -> bool:
    return isinstance(value, str) and _HASH.fullmatch(value) is not None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_header(raw: bytes) -> Header:
    """The header (line 1), checked for shape; its streams are checked against the events."""
    value = _json_object(raw, 1)
    if value.get("format") != FORMAT:
        raise ArchiveError(1, f"not a {FORMAT} (the header's format must be {FORMAT!r})")
    if value.get("version") != VERSION:
        raise ArchiveError(1, f"unsupported archive version {value.get('version')!r}")
    _exact_keys(value, HEADER_KEYS, 1, "the header")
    world_id = canonical_uuid(value["world_id"])
    if world_id is None:
        raise ArchiveError(1, "world_id must be a UUID")
    streams = value["streams"]
    if not isinstance(streams, list) or not streams:
        raise ArchiveError(1, "streams must be a non-empty list")
    entries = tuple(_stream_entry(item, i) for i, item in enumerate(streams))
    if entries[0].kind != "world" or entries[0].stream_id != world_id:
        raise ArchiveError(1, "the first stream must be the world's own (stream_id = world_id)")
    if any(entry.kind != "branch" for entry in entries[1:]):
        raise ArchiveError(1, "every stream after the first must be a branch")
    if not entries[1:]:
        raise ArchiveError(1, "a world has at least one branch")
    if len({entry.stream_id for entry in entries}) != len(entries):
        raise ArchiveError(1, "a stream is listed twice")
    return Header(world_id=world_id, streams=entries)


def _stream_entry(item: Any, index: int) -> StreamEntry:
    where = f"streams[{index}]"
    if not isinstance(item, dict):
        raise ArchiveError(1, f"{where} must be an object")
    kind = item.get("kind")
    keys = {"stream_id", "kind", "events", "head_hash"} | ({"name"} if kind == "branch" else set())
    _exact_keys(item, frozenset(keys), 1, where)
    stream_id = canonical_uuid(item["stream_id"])
    if stream_id is None:
        raise ArchiveError(1, f"{where}.stream_id must be a UUID")
    if kind not in ("world", "branch"):
        raise ArchiveError(1, f"{where}.kind must be 'world' or 'branch'")
    if not _count(item["events"]) or item["events"] < 1:
        raise ArchiveError(1, f"{where}.events must be a positive integer")
    if not is_hash(item["head_hash"]):
        raise ArchiveError(1, f"{where}.head_hash must be 64 hex digits")
    name = item.get("name")
    if kind == "branch" and (not isinstance(name, str) or not name):
        raise ArchiveError(1, f"{where}.name must be a non-empty string")
    return StreamEntry(stream_id, kind, name, item["events"], item["head_hash"])


def parse_event_line(raw: bytes, line: int, loads: Loads = json.loads) -> EventLine:
    """An event line, checked for shape only (the verifier checks what it says).

    The importer passes its transcoder's `decode` as `loads`, so the state comes out with
    the typed values (UUIDs, datetimes) the application stored, from a single parse.
    """
    value = _json_object(raw, line, loads)
    _exact_keys(value, EVENT_KEYS, line, "the event")
    stream_id = value["stream_id"]
    stream_id = _stream_uuid(stream_id) if type(stream_id) is str else None
    if stream_id is None:
        raise ArchiveError(line, "stream_id must be a UUID")
    version = value["stream_version"]
    if not _count(version) or version < 1:
        raise ArchiveError(line, "stream_version must be a positive integer")
    if not isinstance(value["topic"], str):
        raise ArchiveError(line, "topic must be a string")
    state = value["state"]
    if not isinstance(state, dict):
        raise ArchiveError(line, "state must be a JSON object")
    for key in ("hash", "prev_hash"):
        if not is_hash(value[key]):
            raise ArchiveError(line, f"{key} must be 64 hex digits")
        if state.get(key) != value[key]:
            raise ArchiveError(line, f"{key} differs from the {key} inside state")
    return EventLine(
        line=line,
        stream_id=stream_id,
        stream_version=version,
        topic=value["topic"],
        state=state,
        hash=value["hash"],
        prev_hash=value["prev_hash"],
    )
