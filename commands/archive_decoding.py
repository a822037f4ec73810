"""Turning an archive line into a domain event without trusting it.

Only this project's event classes are accepted: a topic is looked up in an allow-list built
from the World aggregate and `commands.branch_events`, never resolved, so an archive cannot
make the importer import a module. A world stream may hold only World events and a branch
stream only branch events. The state must hold exactly the fields the event class declares,
each of its declared type, a timezone-aware timestamp, a well-formed chain and string-valued
provenance; a creation event must name its own aggregate class (the `originator_topic` that
the repository resolves when it loads the aggregate). The state arrives decoded by the
application's transcoder, which makes objects only of its registered types (`_type_`:
UUIDs, datetimes, decimals) and refuses any other.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import Any, Union
from uuid import UUID

from eventsourcing.domain import CanInitAggregate
from eventsourcing.utils import get_topic

from commands import branch_events
from commands.archive_format import ArchiveError, EventLine
from commands.branch import Branch
from commands.chained import ChainedAggregate
from commands.world import World

ENVELOPE = frozenset({"originator_id", "originator_version"})  # the line says these
PROVENANCE = ("actor", "command_id", "correlation_id", "causation_id", "origin")
ABSTRACT = frozenset(
    {
        World.Event,
        World.Created,
        Branch.Event,
        Branch.Created,
        branch_events.ContentEvent,
        branch_events.EntityAdded,
        branch_events.EntityUpdated,
        branch_events.EntityRemoved,
    }
)


def _event_classes(*namespaces: Mapping[str, Any]) -> dict[str, type]:
    found: dict[str, type] = {}
    for namespace in namespaces:
        for value in namespace.values():
            if (
                isinstance(value, type)
                and issubclass(value, ChainedAggregate.Event)
                and value not in ABSTRACT
                and value.__module__.startswith("commands.")
            ):
                found[get_topic(value)] = value
    return found


WORLD_EVENTS = _event_classes(vars(World))
BRANCH_EVENTS = _event_classes(vars(branch_events), vars(Branch))
AGGREGATE_TOPICS = {"world": get_topic(World), "branch": get_topic(Branch)}


def decode(line: EventLine, kind: str) -> Any:
    """The domain event a line holds, after checking that it is one this project records.

    The line's state was decoded by the application's transcoder (see `parse_event_line`);
    the event is made from it as `Mapper.to_domain_event` makes one from a stored event.
    """
    classes = WORLD_EVENTS if kind == "world" else BRANCH_EVENTS
    cls = classes.get(line.topic)
    if cls is None:
        raise ArchiveError(line.line, f"{line.topic!r} is not an event of a {kind} stream")
    declared = _declared_fields(cls)
    state = line.state
    if state.keys() != declared.keys():
        missing, unknown = declared.keys() - state.keys(), state.keys() - declared.keys()
        names = ", ".join(
            [f"missing {n}" for n in sorted(missing)] + [f"unknown {n}" for n in sorted(unknown)]
        )
        raise ArchiveError(line.line, f"the state does not fit {cls.__name__}: {names}")
    _check_values(state, declared, line.line)
    if issubclass(cls, CanInitAggregate) and state["originator_topic"] != AGGREGATE_TOPICS[kind]:
        raise ArchiveError(
            line.line, f"a {kind} stream starts a {AGGREGATE_TOPICS[kind]}, not another class"
        )
    event: Any = object.__new__(cls)
    envelope = {"originator_id": line.stream_id, "originator_version": line.stream_version}
    object.__setattr__(event, "__dict__", {**state, **envelope})
    return event


Check = Callable[[Any], bool]


@cache
def _declared_fields(cls: type) -> dict[str, tuple[Any, Check]]:
    """The state fields of an event class: each one's type, and a check of a value against it.

    The envelope fields (`originator_id`, `originator_version`) come from the line.
    """
    hints = typing.get_type_hints(cls)
    return {
        field.name: (hints[field.name], type_check(hints[field.name]))
        for field in dataclasses.fields(cls)
        if field.name not in ENVELOPE
    }


def _check_values(
    values: dict[str, Any], declared: dict[str, tuple[Any, Check]], line: int
) -> None:
    for name, (hint, check) in declared.items():
        if not check(values[name]):
            raise ArchiveError(line, f"{name} must be of type {_describe(hint)}")
    if values["timestamp"].tzinfo is None:
        raise ArchiveError(line, "timestamp must carry a time zone")
    # `hash` and `prev_hash` are the line's own, which `parse_event_line` checked.
    meta = values["meta"]
    for name in PROVENANCE:
        if meta.get(name) is not None and not isinstance(meta[name], str):
            raise ArchiveError(line, f"meta.{name} must be a string or null")
    if not isinstance(meta.get("actor"), str):
        raise ArchiveError(line, "meta.actor must name who recorded the event")


def type_check(hint: Any) -> Check:
    """A check that a decoded JSON value is of the type an event field declares.

    A type it does not know refuses every value: better refused than wrongly trusted.
    """
    if hint is Any:
        return lambda value: True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        checks = [type_check(arg) for arg in args]
        return lambda value: any(check(value) for check in checks)
    if hint is type(None):
        return lambda value: value is None
    if hint is int:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    if hint in (str, bool, datetime, UUID):
        return lambda value: isinstance(value, hint)
    if origin is dict:
        key_type, value_type = args or (Any, Any)
        if key_type is str and value_type is Any:
            return lambda value: isinstance(value, dict)  # JSON object keys are strings
        key_check, value_check = type_check(key_type), type_check(value_type)
        return lambda value: (
            isinstance(value, dict)
            and all(key_check(k) and value_check(v) for k, v in value.items())
        )
    if origin is list:
        item_check = type_check(args[0]) if args else type_check(Any)
        return lambda value: isinstance(value, list) and all(item_check(v) for v in value)
    return lambda value: False


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) is None and isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")
