"""Archives without a database: lines, header, chain verification, import rules and copies.

Archives are made from worlds recorded in memory, in exactly the format the exporter writes
(`header_line`, `event_line` over the stored states). A forger's archive is made by changing
an event and computing the chain again from there, so that it passes the chain check and
reaches the rules behind it.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Mapper, StoredEvent

from commands.application import WorldHistory
from commands.archive_copy import ArchiveCopy
from commands.archive_decoding import BRANCH_EVENTS, WORLD_EVENTS
from commands.archive_export import plain_state
from commands.archive_format import (
    ArchiveError,
    Header,
    StreamEntry,
    canonical_line,
    event_line,
    header_line,
    parse_header,
    read_lines,
)
from commands.archive_verify import ArchiveVerifier, VerifiedEvent
from commands.chain import GENESIS_HASH, digest_of
from commands.messages import AddEntity, CreateWorld, UpdateEntity
from commands.provenance import Provenance
from commands.world import branch_id
from tests.archive_worlds import BRANCHES, BuiltWorld, build_world

Lines = list[bytes]


def archive_of(app: WorldHistory, world_id: UUID) -> Lines:
    """The world's archive as the exporter writes it, from an in-memory store."""
    world = app.world(world_id)
    streams = [(world_id, "world", None)] + [
        (UUID(entry["branch_id"]), "branch", name) for name, entry in world.branches.items()
    ]
    return archive_from(
        world_id,
        [(sid, kind, name, app.recorder.select_events(sid)) for sid, kind, name in streams],
        app.mapper,
    )


def archive_from(
    world_id: UUID,
    streams: Sequence[tuple[UUID, str, str | None, Sequence[StoredEvent]]],
    mapper: Mapper[UUID],
) -> Lines:
    entries, body = [], []
    for stream_id, kind, name, stored in streams:
        states = [plain_state(mapper, s.state) for s in stored]
        entries.append(StreamEntry(stream_id, kind, name, len(stored), states[-1]["hash"]))
        body += [
            event_line(stream_id, s.originator_version, s.topic, state)
            for s, state in zip(stored, states, strict=True)
        ]
    return [header_line(Header(world_id, tuple(entries))), *body]


def verify(app: WorldHistory, lines: Lines) -> list[VerifiedEvent]:
    header = parse_header(lines[0])
    verifier = ArchiveVerifier(header, app.mapper.transcoder)
    verified = [verifier.check(number, raw) for number, raw in enumerate(lines[1:], start=2)]
    verifier.finish(len(lines) + 1)
    return verified


def refusal(app: WorldHistory, lines: Lines) -> ArchiveError:
    with pytest.raises(ArchiveError) as caught:
        verify(app, lines)
    return caught.value


def line_of(lines: Lines, number: int) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(lines[number - 1])
    return value


def with_line(lines: Lines, number: int, value: dict[str, Any]) -> Lines:
    return [*lines[: number - 1], canonical_line(value), *lines[number:]]


def edited(lines: Lines, number: int, edit: Callable[[dict[str, Any]], None]) -> Lines:
    """The archive with line `number`'s state edited and its stored hash left as it was."""
    value = line_of(lines, number)
    edit(value["state"])
    return with_line(lines, number, value)


def forged(
    app: WorldHistory, lines: Lines, number: int, edit: Callable[[dict[str, Any]], None]
) -> Lines:
    """The archive with line `number` edited and the chain of its stream computed again."""
    out = edited(lines, number, edit)
    stream_id = line_of(out, number)["stream_id"]
    earlier = [line_of(out, n) for n in range(2, number)]
    same_stream = [value["hash"] for value in earlier if value["stream_id"] == stream_id]
    prev = same_stream[-1] if same_stream else line_of(out, number)["prev_hash"]
    for index in range(number, len(out) + 1):
        value = line_of(out, index)
        if value["stream_id"] != stream_id:
            continue
        state = app.mapper.transcoder.decode(json.dumps(value["state"]).encode())
        event: Any = object.__new__({**WORLD_EVENTS, **BRANCH_EVENTS}[value["topic"]])
        envelope = {"originator_id": UUID(stream_id), "originator_version": value["stream_version"]}
        object.__setattr__(event, "__dict__", {**state, **envelope, "prev_hash": prev})
        digest = digest_of(event)
        value["state"].update(prev_hash=prev, hash=digest)
        value.update(prev_hash=prev, hash=digest)
        out = with_line(out, index, value)
        prev = digest
    header = line_of(out, 1)
    for entry in header["streams"]:
        if entry["stream_id"] == stream_id:
            entry["head_hash"] = prev
    return with_line(out, 1, header)


@pytest.fixture
def built(app: WorldHistory) -> BuiltWorld:
    """A world with every kind of event, three branches, a merge and a revert."""
    return build_world(app)


@pytest.fixture
def lines(app: WorldHistory, built: BuiltWorld) -> Lines:
    return archive_of(app, built.world_id)


@pytest.fixture
def small(app: WorldHistory) -> Lines:
    """The archive of a world with only `main`: a location, then a change to it (lines 5, 6)."""
    owner = Provenance(actor=str(uuid4()))
    world_id, location = uuid4(), str(uuid4())
    app.handle(CreateWorld(world_id, owner_id=owner.actor, name="Small"), owner)
    app.handle(
        AddEntity(world_id, "main", "locations", location, {"name": "A", "kind": "k"}), owner
    )
    app.handle(UpdateEntity(world_id, "main", "locations", location, {"name": "B"}), owner)
    return archive_of(app, world_id)


def first_line(lines: Lines, event_type: str) -> int:
    """The number of the first line holding an event of type `event_type`."""
    for number, raw in enumerate(lines[1:], start=2):
        if json.loads(raw)["topic"].endswith(f".{event_type}"):
            return number
    raise AssertionError(f"no {event_type} line")


def number_of(lines: Lines, stream_id: UUID, version: int) -> int:
    """The line number of a stream's event."""
    for number, raw in enumerate(lines[1:], start=2):
        value = json.loads(raw)
        if value["stream_id"] == str(stream_id) and value["stream_version"] == version:
            return number
    raise AssertionError(f"no line for {stream_id} v{version}")


class TestReadingLines:
    def test_splits_at_newlines_keeping_a_last_line_without_one(self) -> None:
        assert list(read_lines(io.BytesIO(b'{"a":1}\n{"b":2}'))) == [b'{"a":1}\n', b'{"b":2}']

    def test_refuses_a_line_longer_than_the_limit_naming_it(self) -> None:
        with pytest.raises(ArchiveError) as caught:
            list(read_lines(io.BytesIO(b"{}\n" + b"x" * 50 + b"\n"), max_line_bytes=20))
        assert caught.value.line == 2
        assert caught.value.errors == {"line": ["2: the line is longer than 20 bytes"]}


class TestHeader:
    def test_names_the_world_and_each_stream_in_registration_order(
        self, lines: Lines, built: BuiltWorld
    ) -> None:
        header = parse_header(lines[0])
        assert header.world_id == built.world_id
        assert [entry.name for entry in header.branches] == list(BRANCHES)
        assert [e.stream_id for e in header.branches] == [
            branch_id(built.world_id, name) for name in BRANCHES
        ]
        assert sum(entry.events for entry in header.streams) == len(lines) - 1

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (b"not json\n", "not valid JSON"),
            (b"[1, 2]\n", "not a JSON object"),
            (b'{"format": "other", "version": 1}\n', "not a space-pearl-archive"),
            (b'{"format": "space-pearl-archive", "version": 2}\n', "unsupported archive version"),
            (b'{"format": "space-pearl-archive", "version": 1}\n', "lacks streams, world_id"),
        ],
    )
    def test_refuses_what_is_not_a_header_at_line_1(self, raw: bytes, reason: str) -> None:
        with pytest.raises(ArchiveError) as caught:
            parse_header(raw)
        assert caught.value.line == 1
        assert reason in caught.value.detail

    def test_refuses_a_branch_whose_stream_id_is_not_derived_from_its_name(
        self, app: WorldHistory, lines: Lines
    ) -> None:
        header = line_of(lines, 1)
        header["streams"][1]["stream_id"] = str(uuid4())
        error = refusal(app, with_line(lines, 1, header))
        assert error.line == 1
        assert "not the one its name derives" in error.detail


class TestEventLines:
    def test_a_line_cut_short_is_refused_by_number(self, app: WorldHistory, lines: Lines) -> None:
        cut = [*lines[:6], lines[6][: len(lines[6]) // 2]]
        error = refusal(app, cut)
        assert error.line == 7
        assert "not valid JSON" in error.detail

    def test_an_unknown_topic_is_refused_without_importing_its_module(
        self, app: WorldHistory, lines: Lines
    ) -> None:
        value = line_of(lines, 3)
        value["topic"] = "archive_trojan_module:Payload"
        error = refusal(app, with_line(lines, 3, value))
        assert error.line == 3
        assert "is not an event of a world stream" in error.detail
        assert "archive_trojan_module" not in sys.modules

    def test_a_branch_event_in_the_world_stream_is_refused(
        self, app: WorldHistory, lines: Lines
    ) -> None:
        value = line_of(lines, 3)
        value["topic"] = "commands.branch_events:LocationAdded"
        assert (
            "is not an event of a world stream" in refusal(app, with_line(lines, 3, value)).detail
        )

    @pytest.mark.parametrize(
        ("edit", "reason"),
        [
            (lambda s: s.update(colour="red"), "unknown colour"),
            (lambda s: s.pop("role"), "missing role"),
            (lambda s: s.update(role=7), "role must be of type str"),
            (lambda s: s.update(hash="ab"), "hash differs from the hash inside state"),
            (lambda s: s["meta"].update(actor=None), "meta.actor must name who recorded"),
        ],
    )
    def test_a_state_that_does_not_fit_its_class_is_refused(
        self, app: WorldHistory, lines: Lines, edit: Callable[[dict[str, Any]], None], reason: str
    ) -> None:
        number = first_line(lines, "MemberAdded")
        error = refusal(app, edited(lines, number, edit))
        assert error.line == number
        assert reason in error.detail


class TestChain:
    def test_an_untouched_archive_verifies_every_event(
        self, app: WorldHistory, lines: Lines
    ) -> None:
        verified = verify(app, lines)
        assert [v.line for v in verified] == list(range(2, len(lines) + 1))
        assert all(v.event.hash == line_of(lines, v.line)["hash"] for v in verified)

    def test_a_changed_name_inside_state_is_refused_at_its_line(
        self, app: WorldHistory, lines: Lines, built: BuiltWorld
    ) -> None:
        number = number_of(lines, branch_id(built.world_id, "main"), 2)
        error = refusal(app, edited(lines, number, lambda s: s["fields"].update(name="Mars")))
        assert error.line == number
        assert "hash does not match the event's content" in error.detail

    def test_a_replaced_hash_is_refused_at_its_line(self, app: WorldHistory, lines: Lines) -> None:
        value = line_of(lines, 4)
        value["hash"] = value["state"]["hash"] = "f" * 64
        error = refusal(app, with_line(lines, 4, value))
        assert error.line == 4
        assert "hash does not match" in error.detail

    def test_two_events_swapped_are_refused_at_the_first_of_them(
        self, app: WorldHistory, lines: Lines
    ) -> None:
        swapped = [*lines[:4], lines[5], lines[4], *lines[6:]]
        error = refusal(app, swapped)
        assert error.line == 5
        assert "expected version 4 of the world stream, found 5" in error.detail

    def test_an_event_left_out_is_refused_where_it_is_missed(
        self, app: WorldHistory, lines: Lines
    ) -> None:
        error = refusal(app, [*lines[:4], *lines[5:]])
        assert error.line == 5
        assert "expected version 4" in error.detail

    def test_an_archive_cut_at_a_line_boundary_is_refused_after_its_last_line(
        self, app: WorldHistory, lines: Lines
    ) -> None:
        error = refusal(app, lines[:-1])
        assert error.line == len(lines)
        assert "the archive ends early: branch 'early' has 1 of the 2 events" in error.detail

    def test_an_event_beyond_the_header_counts_is_refused(
        self, app: WorldHistory, lines: Lines
    ) -> None:
        error = refusal(app, [*lines, lines[-1]])
        assert error.line == len(lines) + 1
        assert "more events than the header's 2" in error.detail

    def test_a_stream_must_end_on_the_header_head_hash(
        self, app: WorldHistory, lines: Lines
    ) -> None:
        header = line_of(lines, 1)
        header["streams"][0]["head_hash"] = "0" * 64
        error = refusal(app, with_line(lines, 1, header))
        assert error.line == header["streams"][0]["events"] + 1
        assert "not on the header's head_hash" in error.detail

    def test_a_fork_continues_its_parents_chain_at_the_fork_version(
        self, app: WorldHistory, lines: Lines, built: BuiltWorld
    ) -> None:
        main = branch_id(built.world_id, "main")
        by_line = {v.line: v for v in verify(app, lines)}
        what_if = by_line[number_of(lines, branch_id(built.world_id, "what-if"), 1)]
        early = by_line[number_of(lines, branch_id(built.world_id, "early"), 1)]
        # what-if forked main at its head (version 17); early forked what-if at 9, which
        # lies before what-if's fork point: its chain continues main's event of version 9.
        assert what_if.links_to == (main, 18)
        assert early.links_to == (main, 10)
        assert early.event.prev_hash == by_line[number_of(lines, main, 10)].event.hash
        assert by_line[number_of(lines, main, 10)].is_fork_point

    def test_a_fork_that_names_another_parent_hash_is_refused(
        self, app: WorldHistory, lines: Lines, built: BuiltWorld
    ) -> None:
        number = number_of(lines, branch_id(built.world_id, "early"), 1)
        fake = "1" * 64

        def relink(state: dict[str, Any]) -> None:
            state["parent_hash"] = state["prev_hash"] = fake

        value = line_of(lines, number)
        value["prev_hash"] = fake
        error = refusal(app, forged(app, with_line(lines, number, value), number, relink))
        assert error.line == number
        assert "parent_hash is not the hash of version 9 of branch 'what-if'" in error.detail


class TestImportRules:
    """Archives whose chain a forger computed again: the rules behind the chain refuse them."""

    def test_a_change_to_an_entity_that_was_never_added(
        self, app: WorldHistory, small: Lines
    ) -> None:
        error = refusal(app, forged(app, small, 6, lambda s: s.update(entity_id=str(uuid4()))))
        assert error.line == 6
        assert "does not exist on this branch" in error.detail

    def test_an_entity_added_twice(self, app: WorldHistory, small: Lines) -> None:
        repeated = line_of(small, 5)  # LocationAdded, appended again as version 4 of main
        repeated["stream_version"] = 4
        header = line_of(small, 1)
        header["streams"][1]["events"] = 4
        twice = with_line([*small, canonical_line(repeated)], 1, header)
        error = refusal(app, forged(app, twice, 7, lambda s: None))
        assert error.line == 7
        assert "is added while it already exists" in error.detail

    @pytest.mark.parametrize(
        ("edit", "reason"),
        [
            (lambda s: s["fields"].update(name=""), "fields.name: must be a non-empty string"),
            (lambda s: s["fields"].update(parent_id="up"), "fields.parent_id: must be a UUID"),
            (lambda s: s["fields"].update(colour="red"), "fields: unknown fields: colour"),
            (lambda s: s.update(entity_id="L-1"), "entity_id: must be a UUID"),
        ],
    )
    def test_added_fields_must_be_what_the_write_side_records(
        self, app: WorldHistory, small: Lines, edit: Callable[[dict[str, Any]], None], reason: str
    ) -> None:
        error = refusal(app, forged(app, small, 5, edit))
        assert error.line == 5
        assert reason in error.detail

    def test_a_world_that_starts_another_aggregate_class(
        self, app: WorldHistory, small: Lines
    ) -> None:
        edit = lambda s: s.update(originator_topic="commands.proposal:Proposal")  # noqa: E731
        error = refusal(app, forged(app, small, 2, edit))
        assert error.line == 2
        assert "starts a commands.world:World" in error.detail

    def test_a_branch_registered_under_another_stream_id(
        self, app: WorldHistory, small: Lines
    ) -> None:
        error = refusal(app, forged(app, small, 3, lambda s: s.update(branch_id=str(uuid4()))))
        assert error.line == 3
        assert "branch_id: must be derived from the world and name" in error.detail

    def test_a_member_added_twice(self, app: WorldHistory, lines: Lines) -> None:
        owner = line_of(lines, 2)["state"]["owner_id"]
        number = first_line(lines, "MemberAdded")
        error = refusal(app, forged(app, lines, number, lambda s: s.update(user_id=owner)))
        assert error.line == number
        assert f"user_id: {owner} is added twice" in error.detail

    def test_a_fork_whose_parent_is_a_branch_of_another_world(
        self, app: WorldHistory, lines: Lines, built: BuiltWorld
    ) -> None:
        number = number_of(lines, branch_id(built.world_id, "what-if"), 1)
        foreign = str(branch_id(uuid4(), "main"))
        error = refusal(
            app, forged(app, lines, number, lambda s: s.update(parent_branch_id=foreign))
        )
        assert error.line == number
        assert "starts from another parent or version than the world registered" in error.detail


class TestCopy:
    def copy(self, app: WorldHistory, lines: Lines) -> tuple[ArchiveCopy, list[Any]]:
        copier = ArchiveCopy(parse_header(lines[0]), uuid4())
        return copier, [copier.rewrite(verified) for verified in verify(app, lines)]

    def test_the_copy_has_new_ids_derived_from_the_new_world(
        self, app: WorldHistory, lines: Lines, built: BuiltWorld
    ) -> None:
        copier, events = self.copy(app, lines)
        expected = {copier.world_id} | {branch_id(copier.world_id, name) for name in BRANCHES}
        assert {e.originator_id for e in events} == expected
        registered = [e.branch_id for e in events if type(e).__name__ == "BranchCreated"]
        assert registered == [str(branch_id(copier.world_id, name)) for name in BRANCHES]
        forks = [e for e in events if type(e).__name__ == "BranchForked"]
        assert {f.parent_branch_id for f in forks} == {
            str(branch_id(copier.world_id, name)) for name in ("main", "what-if")
        }
        assert all(f.world_id == str(copier.world_id) for f in forks)

    def test_the_copy_is_a_valid_new_chain_that_records_its_origin(
        self, app: WorldHistory, lines: Lines, built: BuiltWorld
    ) -> None:
        copier, events = self.copy(app, lines)
        stored = [app.mapper.to_stored_event(e) for e in events]
        streams = []
        for entry in parse_header(lines[0]).streams:
            new_id = (
                copier.world_id
                if entry.kind == "world"
                else branch_id(copier.world_id, str(entry.name))
            )
            streams.append(
                (new_id, entry.kind, entry.name, [s for s in stored if s.originator_id == new_id])
            )
        copy_lines = archive_from(copier.world_id, streams, app.mapper)
        assert len(verify(app, copy_lines)) == len(events)
        originals = {line_of(lines, n)["hash"] for n in range(2, len(lines) + 1)}
        assert not originals & {e.hash for e in events}
        firsts = [e for e in events if e.originator_version == 1]
        assert [e.meta["copied_from"] for e in firsts] == [
            {
                "world_id": str(built.world_id),
                "stream_id": str(entry.stream_id),
                "head_hash": entry.head_hash,
            }
            for entry in parse_header(lines[0]).streams
        ]
        assert all("copied_from" not in e.meta for e in events if e.originator_version > 1)
        assert firsts[0].prev_hash == GENESIS_HASH

    def test_the_copy_holds_the_same_content_on_every_branch(
        self, app: WorldHistory, lines: Lines, built: BuiltWorld
    ) -> None:
        copier, events = self.copy(app, lines)
        app.recorder.insert_events([app.mapper.to_stored_event(e) for e in events])
        for name in BRANCHES:
            original = app.branch(app.world(built.world_id), name)
            copied = app.branch(app.world(copier.world_id), name)
            assert copied.entities == original.entities
            assert copied.head_version == original.head_version
        assert app.world(copier.world_id).members == app.world(built.world_id).members
