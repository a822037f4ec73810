"""The World aggregate: name, description, calendar, members and the branch registry."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from commands.chained import ChainedAggregate
from commands.dates import DEFAULT_CALENDAR, Calendar, check_calendar
from commands.errors import Conflict, InvalidCommand, NotFound, StaleVersion
from commands.messages import RemoveMember, SetMemberRole, UpdateWorld
from commands.validation import check_name, check_text

ROLES = ("owner", "editor", "viewer", "auditor")
Resource = dict[str, Any]
DEFAULT_BRANCH = "main"


@lru_cache(maxsize=4096)  # uuid5 (a SHA-1) costs more than the rest of a command's lookups
def branch_id(world_id: UUID, name: str) -> UUID:
    """A branch's stream id follows from its world and name: no lookup needed."""
    return uuid5(world_id, f"branch:{name}")


class World(ChainedAggregate):
    """A world and who may touch it. Content lives on its branches."""

    if TYPE_CHECKING:  # state is set by events; annotations here would become event fields
        name: str
        description: str | None
        calendar: dict[str, Any]
        members: dict[str, str]
        branches: dict[str, dict[str, Any]]

    class WorldCreated(ChainedAggregate.Created):
        name: str
        description: str | None
        calendar: dict[str, Any]
        owner_id: str

        def apply(self, aggregate: Any) -> None:
            aggregate.name = self.name
            aggregate.description = self.description
            aggregate.calendar = dict(self.calendar)
            aggregate.members = {self.owner_id: "owner"}
            aggregate.branches = {}

    class WorldRenamed(ChainedAggregate.Event):
        name: str

        def apply(self, aggregate: Any) -> None:
            aggregate.name = self.name

    class WorldDescribed(ChainedAggregate.Event):
        description: str | None

        def apply(self, aggregate: Any) -> None:
            aggregate.description = self.description

    class CalendarDefined(ChainedAggregate.Event):
        calendar: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.calendar = dict(self.calendar)

    class MemberAdded(ChainedAggregate.Event):
        user_id: str
        role: str

        def apply(self, aggregate: Any) -> None:
            aggregate.members[self.user_id] = self.role

    class MemberRoleChanged(ChainedAggregate.Event):
        user_id: str
        role: str

        def apply(self, aggregate: Any) -> None:
            aggregate.members[self.user_id] = self.role

    class MemberRemoved(ChainedAggregate.Event):
        user_id: str

        def apply(self, aggregate: Any) -> None:
            del aggregate.members[self.user_id]

    class BranchCreated(ChainedAggregate.Event):
        name: str
        branch_id: str
        forked_from: dict[str, Any] | None

        def apply(self, aggregate: Any) -> None:
            aggregate.branches[self.name] = {
                "branch_id": self.branch_id,
                "forked_from": self.forked_from,
            }

    @classmethod
    def create(
        cls,
        world_id: UUID,
        *,
        name: str,
        owner_id: str,
        description: str | None = None,
        calendar: dict[str, Any] | None = None,
    ) -> World:
        return cls._start(
            cls.WorldCreated,
            id=world_id,
            name=check_name(name),
            description=check_text(description, "description"),
            calendar=check_calendar(calendar if calendar is not None else DEFAULT_CALENDAR),
            owner_id=owner_id,
        )

    @property
    def calendar_rules(self) -> Calendar:
        return Calendar.from_dict(self.calendar)

    def role_of(self, user_id: str) -> str | None:
        return self.members.get(user_id)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a settings PATCH: every field is checked before anything is recorded."""
        name = check_name(changes["name"]) if "name" in changes else self.name
        description = (
            check_text(changes["description"], "description")
            if "description" in changes
            else self.description
        )
        calendar = check_calendar(changes["calendar"]) if "calendar" in changes else self.calendar
        self.rename(name)
        self.describe(description)
        self.define_calendar(calendar)

    def rename(self, name: str) -> None:
        name = check_name(name)
        if name != self.name:
            self.trigger_event(self.WorldRenamed, name=name)

    def describe(self, description: str | None) -> None:
        description = check_text(description, "description")
        if description != self.description:
            self.trigger_event(self.WorldDescribed, description=description)

    def define_calendar(self, calendar: dict[str, Any]) -> None:
        calendar = check_calendar(calendar)
        if calendar != self.calendar:
            self.trigger_event(self.CalendarDefined, calendar=calendar)

    def set_member_role(self, user_id: str, role: str) -> None:
        if role not in ROLES:
            raise InvalidCommand.field("role", f"must be one of {', '.join(ROLES)}")
        current = self.members.get(user_id)
        if current == role:
            return
        if current is None:
            self.trigger_event(self.MemberAdded, user_id=user_id, role=role)
            return
        self._keep_an_owner(user_id)
        self.trigger_event(self.MemberRoleChanged, user_id=user_id, role=role)

    def remove_member(self, user_id: str) -> None:
        if user_id not in self.members:
            raise NotFound(f"user {user_id} is not a member of this world")
        self._keep_an_owner(user_id)
        self.trigger_event(self.MemberRemoved, user_id=user_id)

    def _keep_an_owner(self, leaving_user_id: str) -> None:
        owners = [u for u, r in self.members.items() if r == "owner"]
        if owners == [leaving_user_id]:
            raise Conflict("a world must keep at least one owner")

    def register_branch(self, name: str, forked_from: dict[str, Any] | None = None) -> UUID:
        if name in self.branches:
            raise Conflict(f"branch {name!r} already exists")
        new_id = branch_id(self.id, name)
        self.trigger_event(
            self.BranchCreated, name=name, branch_id=str(new_id), forked_from=forked_from
        )
        return new_id


def change_world(world: World, command: UpdateWorld | SetMemberRole | RemoveMember) -> Resource:
    """Decide a command on the world's settings or members: the resource it answers with."""
    if isinstance(command, UpdateWorld):
        expected = command.expected_version
        if expected is not None and expected != world.version:
            raise StaleVersion(expected, world.version)
        world.update(command.changes)
        return world_resource(world)
    if isinstance(command, SetMemberRole):
        world.set_member_role(command.user_id, command.role)
        return {"user_id": command.user_id, "role": command.role}
    world.remove_member(command.user_id)
    return {"user_id": command.user_id}


def world_resource(world: World) -> Resource:
    return {
        "id": str(world.id),
        "name": world.name,
        "description": world.description,
        "calendar": world.calendar,
        "default_branch": DEFAULT_BRANCH,
        "created_at": world.created_on.isoformat(),
        "version": world.version,
    }
