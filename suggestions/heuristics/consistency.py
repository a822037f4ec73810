"""`consistency`: timeline events that contradict the calendar, their own span, the lifetimes
of the elements they involve, or an exclusive timeline.

- A date the current calendar cannot place (after a calendar change): a day past the end of
  its month is clamped (an edit); any other misfit (a month or year 0 the calendar no longer
  has) is flagged.
- An end before its start: the obvious fix, `end` = `start`, is proposed as an edit.
- An event that involves an element entirely before it was `born`/`founded` or entirely after
  it `died`/`fell` (element metadata, `{year, month?, day?}` or `YEAR[-MM[-DD]]`): flagged.
  A partial date covers its whole period, so only events that cannot touch the lifetime count.
- Overlapping events on a timeline whose metadata says `exclusive: true`: flagged.
"""

from __future__ import annotations

from typing import Any

from commands.dates import Calendar
from suggestions.context import BranchContext
from suggestions.heuristics.dates import Date, first_day, fit, last_day, parse_loose, show

Entity = dict[str, Any]
Finding = dict[str, Any]
BEGINNINGS = (("born", "was born"), ("founded", "was founded"))
ENDINGS = (("died", "died"), ("fell", "fell"))


def check_consistency(context: BranchContext) -> tuple[list[Finding], list[Finding]]:
    """Edits for what has an obvious fix, flags for the rest; in the context's event order."""
    calendar = context.calendar
    edits: list[Finding] = []
    flags: list[Finding] = []
    spans: dict[str, tuple[int, int]] = {}
    lifetimes = {e["id"]: _lifetime(calendar, e) for e in context.elements}
    names = {e["id"]: e["name"] for e in context.elements}
    for event in _in_scope(context):
        ref = f"timeline-events/{event['id']}"
        start, end, problems = _repaired_dates(calendar, event)
        for message in problems:
            flags.append({"kind": "date-outside-calendar", "entity": ref, "message": message})
        if start is None or (event.get("end") is not None and end is None):
            continue
        body: dict[str, Any] = {}
        if start != event.get("start"):
            body["start"] = start
        if end is not None and calendar.ends_before(end, start):
            end = dict(start)
        if end != event.get("end"):
            body["end"] = end
        if body:
            edits.append(
                {
                    "command": "update",
                    "target": ref,
                    "body": body,
                    "expected_version": event["version"],
                }
            )
        span = (first_day(calendar, start), last_day(calendar, end or start))
        spans[event["id"]] = span
        for element_id in event.get("element_ids") or []:
            lifetime = lifetimes.get(element_id)
            if lifetime is not None:
                flags.extend(_outside_lifetime(event, span, names[element_id], lifetime))
    flags.extend(_overlaps(context, spans))
    return edits, flags


def _in_scope(context: BranchContext) -> list[Entity]:
    target = context.target
    if target is not None and target.segment == "elements":
        return [e for e in context.timeline_events if target.id in (e.get("element_ids") or [])]
    if target is not None and target.segment == "locations":
        return [e for e in context.timeline_events if e.get("location_id") == target.id]
    return context.timeline_events


def _repaired_dates(
    calendar: Calendar, event: Entity
) -> tuple[Date | None, Date | None, list[str]]:
    """Start and end as the calendar can place them (None where it cannot), and why not."""
    problems: list[str] = []
    title = event.get("title")
    start = fit(calendar, event.get("start"))
    if start is None:
        problems.append(
            f"{title!r} starts on {show(event.get('start'))}, which the calendar cannot place"
        )
    end = None
    if event.get("end") is not None:
        end = fit(calendar, event["end"])
        if end is None:
            problems.append(
                f"{title!r} ends on {show(event['end'])}, which the calendar cannot place"
            )
    return start, end, problems


Lifetime = tuple[tuple[str, Date, int] | None, tuple[str, Date, int] | None]


def _lifetime(calendar: Calendar, element: Entity) -> Lifetime | None:
    """(beginning, ending) of an element from its metadata: (verb, date, ordinal) each."""
    metadata = element.get("metadata") or {}
    if not isinstance(metadata, dict):
        return None
    begin = end = None
    for key, verb in BEGINNINGS:
        date = fit(calendar, parse_loose(metadata.get(key)))
        if date is not None:
            begin = (verb, date, first_day(calendar, date))
            break
    for key, verb in ENDINGS:
        date = fit(calendar, parse_loose(metadata.get(key)))
        if date is not None:
            end = (verb, date, last_day(calendar, date))
            break
    return (begin, end) if begin or end else None


def _outside_lifetime(
    event: Entity, span: tuple[int, int], name: str, lifetime: Lifetime
) -> list[Finding]:
    begin, end = lifetime
    ref = f"timeline-events/{event['id']}"
    title = event.get("title")
    when = show(event.get("start"))
    if begin is not None and span[1] < begin[2]:
        message = f"{title!r} ({when}) involves {name!r}, who {begin[0]} only in {show(begin[1])}"
        return [{"kind": "before-lifetime", "entity": ref, "message": message}]
    if end is not None and span[0] > end[2]:
        message = f"{title!r} ({when}) involves {name!r}, who {end[0]} in {show(end[1])}"
        return [{"kind": "after-lifetime", "entity": ref, "message": message}]
    return []


def _overlaps(context: BranchContext, spans: dict[str, tuple[int, int]]) -> list[Finding]:
    """Each event that overlaps an earlier one on an exclusive timeline, with that one."""
    exclusive = {
        t["id"]: t.get("name")
        for t in context.timelines
        if isinstance(t.get("metadata"), dict) and t["metadata"].get("exclusive") is True
    }
    flags: list[Finding] = []
    by_timeline: dict[str, list[Entity]] = {}
    for event in context.timeline_events:
        if event.get("timeline_id") in exclusive and event["id"] in spans:
            by_timeline.setdefault(event["timeline_id"], []).append(event)
    for timeline_id, events in by_timeline.items():
        events.sort(key=lambda e: (spans[e["id"]], e["id"]))
        open_events: list[Entity] = []
        for event in events:
            first, _ = spans[event["id"]]
            open_events = [o for o in open_events if spans[o["id"]][1] >= first]
            for other in open_events:
                flags.append(
                    {
                        "kind": "overlap",
                        "entity": f"timeline-events/{event['id']}",
                        "message": (
                            f"{event.get('title')!r} overlaps {other.get('title')!r} "
                            f"(timeline-events/{other['id']}) on the exclusive timeline "
                            f"{exclusive[timeline_id]!r}"
                        ),
                    }
                )
            open_events.append(event)
    return flags
