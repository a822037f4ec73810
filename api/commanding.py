"""Hand a command to the write side, stamped with who asked and in which request."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from flask import g

from api.metrics import counted
from api.security import current_user_id
from api.services import services
from commands.application import Outcome
from commands.messages import Command
from commands.provenance import Provenance


@counted
def execute(command: Command) -> Outcome:
    provenance = Provenance(
        actor=current_user_id(),
        command_id=str(uuid4()),
        correlation_id=g.get("request_id"),
    )
    return services().history.handle(command, provenance, session=g.get("command_session"))


def written(outcome: Outcome, status: int = 200, location: str | None = None) -> tuple[Any, ...]:
    """The view result for a command: body with `position`, ETag and X-Position headers."""
    body = {**outcome.resource, "position": outcome.position}
    headers = {} if outcome.position is None else {"X-Position": str(outcome.position)}
    if "version" in outcome.resource:
        headers["ETag"] = f'"{outcome.resource["version"]}"'
    if location:
        headers["Location"] = location
    return body, status, headers
