"""Content events (adds, updates, removals of the four collections): the projector's hot path.

Each one logs its change row and turns the entity's current row into the next version; the
branch lookup and the id texts are shared by both rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from commands import branch_events as ev
from projections import tables as t
from projections.content_rows import next_fields, row_values

if TYPE_CHECKING:
    from projections.read_model import ReadModel


def project_content(model: ReadModel, event: ev.ContentEvent, position: int) -> None:
    """Log the change, close the entity's current row at this version and add the next one.

    The hot path of the projector: branch lookups and id texts are shared by both rows.
    """
    branch_id = event.originator_id
    world_id, base, world_text, branch_text = model._branch(branch_id)
    version = base + event.originator_version - 1
    model._heads[branch_id] = version
    model._world_positions[world_id] = position
    ids = model.ids
    entity_id = ids(event.entity_id)
    model._changes.append((position, event, world_text, branch_text, version, entity_id))
    collection = event.collection
    key = (t.CONTENT[collection].name, branch_text, entity_id)
    if isinstance(event, ev.EntityAdded):
        fields, created_seq = dict(event.fields), position
    else:
        current = model.rows.close(key, version)
        if isinstance(event, ev.EntityRemoved):
            return
        fields, created_seq = next_fields(event, current), current["created_seq"]
    spans = model._ordinals(world_id) if collection == "timeline_events" else None
    row = row_values(collection, fields, spans, ids)
    row.update(
        world_id=world_text,
        branch_id=branch_text,
        id=entity_id,
        valid_from=version,
        valid_to=None,
        created_seq=created_seq,
    )
    model.rows.add(key, row)
