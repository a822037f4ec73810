"""`Application.save` without its generic path, for applications that save aggregates.

The generic path checks every object against runtime Protocols (`isinstance` on a
`typing.Protocol` inspects the class each time), which cost more than the rest of a save.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import Recording

_HOOKS = ("_record", "_take_snapshots", "_notify", "notify")


class DirectSave(Application[UUID]):
    """Records aggregates' pending events as `Application.save` does: same events, same
    `Recording`s; events given directly, an aggregate cache, snapshots or overridden hooks
    take the generic path."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self._direct_save = (
            self.snapshots is None
            and not self.repository.cache
            and all(getattr(type(self), h) is getattr(Application, h) for h in _HOOKS)
        )

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        if not self._direct_save or not all(
            obj is None or isinstance(obj, BaseAggregate) for obj in objs
        ):
            return super().save(*objs, **kwargs)
        events: list[Any] = []
        for obj in objs:
            if obj is not None:
                events += obj.collect_events()
        return self.events.put(events, tracking=None, **kwargs)
