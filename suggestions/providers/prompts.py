"""What the language model is told: the edit format, the task, and only the world it needs.

Each kind gets only the fields its task reads (names and ids for `link-mentions`, dates and
lifetimes for `consistency`, a wider outline for `expand`), long text is cut, and the lists
shrink until the whole excerpt fits `max_chars`.
"""

from __future__ import annotations

import json
from typing import Any

from suggestions.context import BranchContext

PROMPT_VERSION = "openai-chat-1"
TEXT_CAP = 600
LIFETIME_KEYS = ("born", "died", "founded", "fell")
START_CAPS = {"elements": 400, "locations": 400, "timelines": 100, "timeline_events": 300}

EDIT_FORMAT = """\
You propose edits to a world-building database. Answer with one JSON object:
{"edits": [EDIT, ...], "flags": [FLAG, ...]}
EDIT is {"command": "create" | "update" | "delete", "target": TARGET, "body": {...}}:
- create: TARGET is the collection ("locations", "elements", "timelines", "timeline-events")
  and body holds the new entity's fields;
- update: TARGET is "<collection>/<id>" and body holds only the fields to change
  ("element_ids" replaces the whole list);
- delete: TARGET is "<collection>/<id>" and body is {}.
Fields: locations {name, kind, description, parent_id, metadata}; elements {kind, name,
summary, tags, metadata}; timelines {name, description}; timeline-events {timeline_id, title,
description, start, end, location_id, element_ids, metadata}. Names, kinds and titles are
1-200 characters. Dates are {"year": int, "month": int, "day": int} (month and day optional)
in the world's calendar; end is never before start. Refer only to ids given below.
FLAG is {"kind": short-label, "entity": "<collection>/<id>", "message": one sentence} for a
problem that has no obvious edit. Propose nothing you are unsure of; empty lists are fine.
Every edit is reviewed by a person before it is applied."""

TASKS = {
    "link-mentions": (
        "Find timeline events whose title or description names an element or a location "
        "that the event does not link. Propose an update of the event that sets element_ids "
        "to its current ids plus the named ones, or location_id when it has none."
    ),
    "consistency": (
        "Find timeline events that contradict the calendar, end before they start, involve "
        "an element outside its lifetime (born/died, founded/fell), or overlap on a timeline "
        "marked exclusive. Propose an edit where the fix is obvious, otherwise a flag."
    ),
    "expand": (
        "Fill the gap the user describes with new timeline events, elements or locations "
        "that fit what exists. Prefer few, well-grounded creations; link existing ids."
    ),
}


def system_prompt(kind: str) -> str:
    return f"{EDIT_FORMAT}\n\nTask ({kind}): {TASKS[kind]}"


def user_message(kind: str, context: BranchContext, params: dict[str, Any], max_chars: int) -> str:
    """The request and the world excerpt as compact JSON, lists cut to fit `max_chars`."""
    caps = dict(START_CAPS)
    while True:
        payload = _payload(kind, context, params, caps)
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        if len(text) <= max_chars or not any(caps.values()):
            return text
        caps = {name: cap // 2 for name, cap in caps.items()}


def _payload(
    kind: str, context: BranchContext, params: dict[str, Any], caps: dict[str, int]
) -> dict[str, Any]:
    request = {k: params[k] for k in ("prompt", "target", "from", "to") if params.get(k)}
    world: dict[str, Any] = {}
    if kind == "link-mentions":
        world["elements"] = [{"id": e["id"], "name": e["name"]} for e in context.elements]
        world["locations"] = [{"id": x["id"], "name": x["name"]} for x in context.locations]
        world["timeline_events"] = [
            {
                "id": e["id"],
                "title": e["title"],
                "description": _cut(e.get("description")),
                "element_ids": e.get("element_ids") or [],
                "location_id": e.get("location_id"),
            }
            for e in context.timeline_events
        ]
    elif kind == "consistency":
        world["calendar"] = {
            "months": [{"name": n, "days": d} for n, d in context.calendar.months],
            "year_zero": context.calendar.year_zero,
        }
        world["elements"] = [
            {"id": e["id"], "name": e["name"], **_lifetime(e)} for e in context.elements
        ]
        world["timelines"] = [{"id": t["id"], "name": t["name"]} for t in context.timelines]
        world["timeline_events"] = [
            {k: e.get(k) for k in ("id", "timeline_id", "title", "start", "end", "element_ids")}
            for e in context.timeline_events
        ]
    else:
        world["elements"] = [
            {"id": e["id"], "name": e["name"], "kind": e["kind"]} for e in context.elements
        ]
        world["locations"] = [
            {"id": x["id"], "name": x["name"], "kind": x["kind"], "parent_id": x["parent_id"]}
            for x in context.locations
        ]
        world["timelines"] = [{"id": t["id"], "name": t["name"]} for t in context.timelines]
        world["timeline_events"] = [
            {
                **{k: e.get(k) for k in ("id", "timeline_id", "title", "start", "end")},
                "location_id": e.get("location_id"),
                "element_ids": e.get("element_ids") or [],
            }
            for e in context.timeline_events
        ]
        if context.target_entity is not None:
            world["target"] = {
                k: _cut(v) if isinstance(v, str) else v
                for k, v in context.target_entity.items()
                if k != "metadata"
            }
    omitted: dict[str, int] = {}
    for name in list(world):
        if name in caps and isinstance(world[name], list):
            if len(world[name]) > caps[name]:
                omitted[name] = len(world[name]) - caps[name]
            world[name] = world[name][: caps[name]]
    payload: dict[str, Any] = {"kind": kind, "request": request, "world": world}
    if omitted:
        payload["omitted"] = omitted  # how many of each list were left out
    if context.truncated:
        payload["incomplete"] = list(context.truncated)  # the branch holds even more of these
    return payload


def _lifetime(element: dict[str, Any]) -> dict[str, Any]:
    metadata = element.get("metadata") or {}
    if not isinstance(metadata, dict):
        return {}
    return {k: metadata[k] for k in LIFETIME_KEYS if k in metadata and _small(metadata[k])}


def _small(value: Any) -> bool:
    return len(json.dumps(value, ensure_ascii=False)) <= 100


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= TEXT_CAP:
        return text
    return text[:TEXT_CAP] + "…"
