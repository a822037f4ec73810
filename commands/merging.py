"""Comparing two states of a branch's content, and three-way merging them.

States are `collection -> id -> entity` as the Branch aggregate holds them. A merge looks at
each entity changed by the source since the common ancestor and decides, field by field,
what the target should become: `metadata` merges key by key, `tags` and `element_ids` as
sets; the same field changed differently on both sides, or a change against a removal, is a
conflict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from commands.branch_events import COLLECTIONS, FIELDS
from commands.reconcile import Desired, content_of

State = dict[str, dict[str, dict[str, Any]]]
SET_FIELDS = ("tags", "element_ids")


def compare(base: State, head: State) -> list[dict[str, Any]]:
    """Entity by entity and field by field, what differs from `base` to `head`."""
    changes: list[dict[str, Any]] = []
    for collection in COLLECTIONS:
        ids = sorted(base.get(collection, {}).keys() | head.get(collection, {}).keys())
        for entity_id in ids:
            before = content_of(base.get(collection, {}).get(entity_id))
            after = content_of(head.get(collection, {}).get(entity_id))
            if before == after:
                continue
            fields = {
                name: {"base": (before or {}).get(name), "head": (after or {}).get(name)}
                for name in FIELDS[collection]
                if (before or {}).get(name) != (after or {}).get(name)
            }
            kind = "added" if before is None else "removed" if after is None else "modified"
            changes.append(
                {
                    "entity_id": entity_id,
                    "collection": collection.replace("_", "-"),
                    "change": kind,
                    "fields": fields,
                }
            )
    return changes


@dataclass
class MergePlan:
    """What a merge would make of each entity it touches, and what stops it."""

    desired: Desired = field(default_factory=dict)
    edits: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)


def plan_merge(ancestor: State, ours: State, theirs: State) -> MergePlan:
    """Three-way merge of `theirs` into `ours` since `ancestor`."""
    plan = MergePlan()
    for collection in COLLECTIONS:
        ids = ancestor.get(collection, {}).keys() | theirs.get(collection, {}).keys()
        for entity_id in sorted(ids):
            base = content_of(ancestor.get(collection, {}).get(entity_id))
            mine = content_of(ours.get(collection, {}).get(entity_id))
            their = content_of(theirs.get(collection, {}).get(entity_id))
            if their == base:
                continue  # the source did not touch it
            _merge_entity(plan, collection, entity_id, base, mine, their)
    return plan


def _merge_entity(
    plan: MergePlan,
    collection: str,
    entity_id: str,
    base: dict[str, Any] | None,
    mine: dict[str, Any] | None,
    their: dict[str, Any] | None,
) -> None:
    def conflict(name: str | None, b: Any, o: Any, t: Any) -> None:
        plan.conflicts.append(
            {
                "entity_id": entity_id,
                "collection": collection.replace("_", "-"),
                "field": name,
                "base": b,
                "ours": o,
                "theirs": t,
            }
        )

    if their is None:  # removed by the source
        if mine is None:
            return
        if mine != base:
            conflict(None, base, mine, None)
            return
        _desire(plan, collection, entity_id, None, "removed")
        return
    if mine is None:
        if base is not None:  # removed here, changed there
            conflict(None, base, None, their)
            return
        _desire(plan, collection, entity_id, their, "added")
        return
    merged = dict(mine)
    for name in FIELDS[collection]:
        b = (base or {}).get(name)
        o, t = mine.get(name), their.get(name)
        if t == b or o == t:
            continue
        if o == b:
            merged[name] = t
        elif name in SET_FIELDS:
            merged[name] = _merge_sets(b or [], o or [], t or [])
        elif name == "metadata" and isinstance(o, dict) and isinstance(t, dict):
            merged[name] = _merge_keys(
                b or {}, o, t, lambda key, *v: conflict(f"metadata.{key}", *v)
            )
        else:
            conflict(name, b, o, t)
    if merged != mine:
        _desire(plan, collection, entity_id, merged, "modified")


def _merge_sets(base: list[Any], ours: list[Any], theirs: list[Any]) -> list[Any]:
    added = [x for x in theirs if x not in base]
    dropped = {x for x in base if x not in theirs}
    return [x for x in ours if x not in dropped] + [x for x in added if x not in ours]


def _merge_keys(
    base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any], conflict: Any
) -> dict[str, Any]:
    merged = dict(ours)
    for key in base.keys() | ours.keys() | theirs.keys():
        b, o, t = base.get(key), ours.get(key), theirs.get(key)
        if t == b or o == t:
            continue
        if o == b:
            if key in theirs:
                merged[key] = t
            else:
                merged.pop(key, None)
        else:
            conflict(key, b, o, t)
    return merged


def _desire(
    plan: MergePlan, collection: str, entity_id: str, fields: dict[str, Any] | None, change: str
) -> None:
    plan.desired.setdefault(collection, {})[entity_id] = fields
    plan.edits.append(
        {
            "entity_id": entity_id,
            "collection": collection.replace("_", "-"),
            "change": change,
            "fields": fields,
        }
    )
