"""Who asked for the events being recorded, and why: attached to every stored event."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from uuid import uuid4


@dataclass(frozen=True)
class Provenance:
    """Actor and ids stamped on each event a command records."""

    actor: str
    command_id: str = field(default_factory=lambda: str(uuid4()))
    correlation_id: str | None = None
    causation_id: str | None = None
    origin: str | None = None  # e.g. "ai-proposal" for edits a person accepted from the AI

    def as_meta(self) -> dict[str, str | None]:
        """The fields in declaration order, `origin` only when set (a fresh dict each time;
        built by hand: `dataclasses.asdict` deep-copies and costs ~15x as much)."""
        meta: dict[str, str | None] = {
            "actor": self.actor,
            "command_id": self.command_id,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
        }
        if self.origin is not None:
            meta["origin"] = self.origin
        return meta


SYSTEM = Provenance(actor="system", command_id="system")

_current: ContextVar[Provenance] = ContextVar("provenance", default=SYSTEM)


def current_provenance() -> Provenance:
    return _current.get()


@contextmanager
def recorded_by(provenance: Provenance) -> Iterator[None]:
    """Stamp every event triggered inside the block with `provenance`."""
    token = _current.set(provenance)
    try:
        yield
    finally:
        _current.reset(token)
