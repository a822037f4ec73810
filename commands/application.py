"""The write-side application: load the aggregates a command needs, decide, save.

A save that loses the race for a stream (another writer appended first) is retried from a
fresh load, so the decision is always made on the latest state; after `retries` losses the
command is refused with `ConcurrentWrite` and nothing is recorded.

A content command whose world and branch are cached is first decided on them as they are and
appended in one round trip, on condition that neither stream moved (`content.on_cached_state`);
only when one did, or the command was refused, is it decided again after reading what is new.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from commands import branching, content, suggesting
from commands.branch import Branch
from commands.branch_cache import AggregateCache, BranchTurns
from commands.branch_events import BranchForked
from commands.content import ContentCommand
from commands.direct_save import DirectSave
from commands.errors import ConcurrentWrite, Conflict, NotFound
from commands.messages import (
    AcceptProposal,
    Command,
    CompleteProposal,
    CreateWorld,
    FailProposal,
    ForkBranch,
    MergeBranch,
    RejectProposal,
    RemoveMember,
    RequestSuggestion,
    RevertBranch,
    SetMemberRole,
    UpdateWorld,
)
from commands.proposal import Proposal
from commands.provenance import Provenance, recorded_by
from commands.recorder import PearlRecorder
from commands.world import DEFAULT_BRANCH, World, branch_id, change_world, world_resource

Aggregates = list[Any]
RACE_BACKOFF = 0.01  # seconds: the most the first retry after a lost race waits
# Entities the cached branches of one process hold at most in all: about 1 KB each (1.0 KB
# by tracemalloc, 1.1 KB of RSS for a branch of the bench's elements), so ~120 MB at most.
BRANCH_CACHE_ENTITIES = 110_000
LOAD_PAGE = 2000  # events per read when a branch is loaded from its start


@dataclass(frozen=True)
class Outcome:
    """What a command did: the resource as the write model now knows it, and where."""

    resource: dict[str, Any]
    version: int
    position: int | None
    events: int = field(default=0, compare=False)  # how many it recorded (for metrics)


class WorldHistory(DirectSave):
    """Worlds and their branches, event-sourced."""

    name = "pearl"
    retries = 10

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.retries = int(self.env.get("COMMAND_RETRIES", str(self.retries)))
        size = int(self.env.get("BRANCH_CACHE_SIZE", "64"))
        entities = int(self.env.get("BRANCH_CACHE_ENTITIES", str(BRANCH_CACHE_ENTITIES)))
        self.branch_cache: AggregateCache[Branch] = AggregateCache(
            size, budget=entities, weight=Branch.entity_count
        )
        self.world_cache: AggregateCache[World] = AggregateCache(size)
        self.turns = BranchTurns()
        # Lent between commands only with our recorder, which reads several streams at once.
        self._caching = (
            isinstance(self.recorder, PearlRecorder)
            and not self.repository.cache
            and not self.snapshots
        )

    @classmethod
    def on_database(cls, database_url: str, **settings: str) -> WorldHistory:
        """The application on PostgreSQL, with tables that Alembic owns (never auto-created).

        Events are recorded by `commands.recorder.PearlRecorder` (parallel appends, readers
        that never skip a late commit).
        """
        env = {
            "PERSISTENCE_MODULE": "commands.recorder:PearlFactory",
            "SQLALCHEMY_URL": database_url,
            "CREATE_TABLE": "n",
            **settings,
        }
        return cls(env=env)

    # -- writing -------------------------------------------------------------------------

    def handle(self, command: Command, provenance: Provenance, session: Any = None) -> Outcome:
        """Decide `command` and record its events, retrying lost races on the stream.

        With `session` (a SQLAlchemy session) the events join that session's transaction
        and the caller commits; a lost race rolls the session back before the retry.
        Commands on one branch take turns in this process (see `BranchTurns`).
        """
        with self.turns.of(getattr(command, "world_id", None), getattr(command, "branch", None)):
            return self._handle(command, provenance, session)

    def _handle(self, command: Command, provenance: Provenance, session: Any) -> Outcome:
        guess = session is None and self._caching  # one round trip on cached state first
        for attempt in range(self.retries):
            self.branch_cache.begin()
            self.world_cache.begin()
            saved = False
            try:
                with (
                    self._one_connection(),
                    self._turn(command, attempt, session),
                    recorded_by(provenance),
                ):
                    decided = content.on_cached_state(self, command) if guess else None
                    guess = False
                    if decided is None:
                        with ExitStack() as undo:  # what a failed save must put right
                            aggregates, resource, version = self._decide(command, undo)
                            recordings = (
                                self.save(*aggregates, session=session)
                                if session
                                else self.save(*aggregates)
                            )
                    else:
                        recordings, resource, version = decided
                saved = True
            except (IntegrityError, SQLIntegrityError):
                if session is not None:
                    session.rollback()
                if isinstance(command, CreateWorld):
                    raise Conflict(f"world {command.world_id} already exists") from None
                # A random pause, doubling each time, so racing writers fall out of step.
                time.sleep(random.uniform(0, min(0.1, RACE_BACKOFF * 2**attempt)))
                continue
            finally:
                # With a caller's session the commit is still to come: lend nothing back.
                self.branch_cache.end(consistent=saved and session is None)
                self.world_cache.end(consistent=saved and session is None)
            position = recordings[-1].notification.id if recordings else None
            return Outcome(resource, version, position, events=len(recordings))
        raise ConcurrentWrite(
            f"the stream kept changing under this command ({self.retries} attempts); try again"
        )

    def _one_connection(self) -> AbstractContextManager[None]:
        """The reads and the append of one attempt on one pooled connection, if the recorder
        can do that."""
        recorder = self.recorder
        if isinstance(recorder, PearlRecorder):
            return recorder.holding_connection()
        return nullcontext()

    def _turn(self, command: Command, attempt: int, session: Any) -> AbstractContextManager[None]:
        """After a lost race, the branch's turn for the attempt (see `PearlRecorder.stream_turn`):
        other processes' appends to it wait while this one reads what is new and appends, so
        a steady writer elsewhere cannot make it lose every time."""
        recorder = self.recorder
        world_id, name = getattr(command, "world_id", None), getattr(command, "branch", None)
        if attempt == 0 or session is not None or world_id is None or not isinstance(name, str):
            return nullcontext()
        if not isinstance(recorder, PearlRecorder):
            return nullcontext()
        return recorder.stream_turn(branch_id(world_id, name))

    def _decide(self, command: Command, undo: ExitStack) -> tuple[Aggregates, dict[str, Any], int]:
        """The aggregates `command` changed (events pending), its resource and version.
        Content commands enter into `undo` what puts their branch right if the save fails."""
        if isinstance(command, CreateWorld):
            return self._create_world(command)
        if isinstance(command, ForkBranch):
            return branching.fork(self, command)
        if isinstance(command, MergeBranch):
            return branching.merge(self, command)
        if isinstance(command, RevertBranch):
            return branching.revert(self, command)
        if isinstance(command, RequestSuggestion):
            return suggesting.request(self, command)
        if isinstance(command, CompleteProposal):
            return suggesting.complete(self, command)
        if isinstance(command, FailProposal):
            return suggesting.fail(self, command)
        if isinstance(command, AcceptProposal):
            return suggesting.accept(self, command)
        if isinstance(command, RejectProposal):
            return suggesting.reject(self, command)
        if isinstance(command, (UpdateWorld, SetMemberRole, RemoveMember)):
            world = self.world(command.world_id)
            return [world], change_world(world, command), world.version
        return self._change_content(command, undo)

    def _create_world(self, command: CreateWorld) -> tuple[Aggregates, dict[str, Any], int]:
        world = World.create(
            command.world_id,
            name=command.name,
            owner_id=command.owner_id,
            description=command.description,
            calendar=command.calendar,
        )
        main_id = world.register_branch(DEFAULT_BRANCH)
        main = Branch.start(main_id, world_id=world.id, name=DEFAULT_BRANCH)
        return [world, main], world_resource(world), world.version

    def _change_content(
        self, command: ContentCommand, undo: ExitStack
    ) -> tuple[Aggregates, dict[str, Any], int]:
        content.check_collection(command)
        world, branch = self._world_and_branch(command.world_id, command.branch)
        if self._caching:  # refused or lost: undone, both still agree with the store
            undo.enter_context(content.kept_unless_saved(self, world, branch))
        else:
            undo.enter_context(branch.undone_on_error())
        resource, version = content.change(world, branch, command)
        return [branch], resource, version

    # -- reading the write model -----------------------------------------------------------

    def world(self, world_id: UUID) -> World:
        try:
            world: World = self.repository.get(world_id)
        except AggregateNotFoundError:
            raise NotFound(f"world {world_id} does not exist") from None
        if not isinstance(world, World):
            raise NotFound(f"world {world_id} does not exist")
        return world

    def _world_and_branch(self, world_id: UUID, name: str) -> tuple[World, Branch]:
        """The world and its branch `name` at their heads: one round trip when the branch is
        cached (the new events of the world and of the branch in one query; the world's
        from its start unless it is cached too)."""
        stream_id = branch_id(world_id, name)
        recorder = self.recorder
        cached = self.branch_cache.take(stream_id) if self._caching else None
        world = self.world_cache.take(world_id) if cached is not None else None
        if cached is None:
            world = self.world(world_id)
            if self._caching:
                self.world_cache.lent(world)
            return world, self.branch(world, name)
        assert isinstance(recorder, PearlRecorder)
        self.branch_cache.lent(cached)  # from here on it goes back only if consistent
        if world is not None:
            self.world_cache.lent(world)
        after = {world_id: 0 if world is None else world.version, stream_id: cached.version}
        found = recorder.select_streams(after)
        loaded: Any = world
        for stored in found[world_id]:
            event: Any = self.mapper.to_domain_event(stored)
            loaded = event.mutate(loaded)  # catch up with changes to the world
        if not isinstance(loaded, World):
            raise NotFound(f"world {world_id} does not exist")
        if world is None:
            self.world_cache.lent(loaded)
        if name not in loaded.branches:
            raise NotFound(f"branch {name!r} does not exist in this world")
        for stored in found[stream_id]:
            newer: Any = self.mapper.to_domain_event(stored)
            newer.mutate(cached)  # catch up with what other processes recorded
        return loaded, cached

    def branch(self, world: World, name: str) -> Branch:
        if name not in world.branches:
            raise NotFound(f"branch {name!r} does not exist in this world")
        return self.load_branch(branch_id(world.id, name))

    def load_branch(self, stream_id: UUID, version: int | None = None) -> Branch:
        """A branch's state, at its head or as of branch version `version`.

        A fork is its parent's state at the fork version plus its own events; a version
        before the fork point reads the parent (a Branch named as the parent).
        """
        if version is None:
            cached = self.branch_cache.take(stream_id)
            if cached is not None:
                newer: list[Any] = list(self.events.get(stream_id, gt=cached.version))
                for event in newer:
                    event.mutate(cached)  # catch up with what other processes recorded
                self.branch_cache.lent(cached)
                return cached
        events = self._events_of(stream_id)
        first = next(events, None)
        if first is None:
            raise NotFound(f"branch stream {stream_id} does not exist")
        forked = isinstance(first, BranchForked)
        if forked and version is not None and version < first.at_version:
            return self.load_branch(UUID(first.parent_branch_id), version)
        branch: Branch = first.mutate(None)
        if forked:
            branch.entities = self.load_branch(
                UUID(first.parent_branch_id), first.at_version
            ).entities
        # The stream's version `v` is the branch's `base_version + v - 1`.
        upto = None if version is None else version - branch.base_version + 1
        for count, event in enumerate(self._events_of(stream_id, after=1, upto=upto), 1):
            if version is not None and branch.head_version >= version:
                break
            event.mutate(branch)
            if count % LOAD_PAGE == 0:
                self.branch_cache.make_room(branch.entity_count())
        if version is None:
            self.branch_cache.lent(branch)
        return branch

    def _events_of(self, stream_id: UUID, after: int = 0, upto: int | None = None) -> Iterator[Any]:
        """A stream's events after version `after` (up to `upto`), read a page at a time: a
        long branch is never all in memory at once as rows or stored events, only as state."""
        while True:
            page = self.recorder.select_events(stream_id, gt=after, lte=upto, limit=LOAD_PAGE)
            for stored in page:
                yield self.mapper.to_domain_event(stored)
            if len(page) < LOAD_PAGE:
                return
            after = page[-1].originator_version

    def hash_at(self, stream_id: UUID, version: int) -> str:
        """The chain hash of the branch's lineage after its version `version`.

        Reads two events (the stream's first, which says where a fork starts, and the one at
        `version`), not the whole stream: forking a long branch stays cheap.
        """
        first: Any = next(iter(self.events.get(stream_id, lte=1)), None)
        if first is None:
            raise NotFound(f"branch stream {stream_id} does not exist")
        base = first.at_version if isinstance(first, BranchForked) else 0
        if version < base:
            return self.hash_at(UUID(first.parent_branch_id), version)
        position = version - base + 1  # the stream's first event is the branch's `base`
        found: list[Any] = list(self.events.get(stream_id, gt=position - 1, lte=position))
        if not found:
            raise IndexError(f"branch stream {stream_id} has no version {version}")
        return str(found[0].hash)

    def proposal(self, proposal_id: UUID) -> Proposal:
        try:
            found: Any = self.repository.get(proposal_id)
        except AggregateNotFoundError:
            raise NotFound(f"proposal {proposal_id} does not exist") from None
        if not isinstance(found, Proposal):
            raise NotFound(f"proposal {proposal_id} does not exist")
        return found

    def compare(self, world_id: UUID, base: str, head: str) -> dict[str, Any]:
        return branching.comparison(self, world_id, base, head)

    def entity(
        self, world_id: UUID, branch_name: str, collection: str, entity_id: str
    ) -> dict[str, Any]:
        branch = self.branch(self.world(world_id), branch_name)
        return dict(branch.get(collection, entity_id))
