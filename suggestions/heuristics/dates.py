"""In-world dates as the heuristics meet them: in metadata, and after a calendar change."""

from __future__ import annotations

from typing import Any

from commands.dates import Calendar, parse_query_date
from commands.errors import InvalidCommand

Date = dict[str, int]


def parse_loose(value: Any) -> Date | None:
    """A date written in metadata: `{year, month?, day?}`, `"YEAR[-MM[-DD]]"` or a bare year.

    Anything else (prose such as "unknown", floats, booleans) is None: no date, no finding.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return {"year": value}
    if isinstance(value, str):
        try:
            return parse_query_date(value)
        except ValueError:
            return None
    if isinstance(value, dict) and set(value) <= {"year", "month", "day"}:
        parts = {k: v for k, v in value.items() if v is not None}
        if "year" in parts and all(
            isinstance(v, int) and not isinstance(v, bool) for v in parts.values()
        ):
            return parts
    return None


def fit(calendar: Calendar, date: Any) -> Date | None:
    """`date` in canonical form if the calendar can place it, after clamping a day that is
    past the end of its month (the one obvious repair after months got shorter); else None."""
    try:
        return calendar.check(date, "date")
    except InvalidCommand:
        pass
    if not isinstance(date, dict) or not isinstance(date.get("month"), int):
        return None
    month = date["month"]
    if not 1 <= month <= len(calendar.months) or not isinstance(date.get("day"), int):
        return None
    clamped = {**date, "day": min(max(1, date["day"]), calendar.months[month - 1][1])}
    try:
        return calendar.check(clamped, "date")
    except InvalidCommand:
        return None


def first_day(calendar: Calendar, date: Date) -> int:
    return calendar.ordinal(date)


def last_day(calendar: Calendar, date: Date) -> int:
    return calendar.ordinal(date, end_of_period=True)


def show(date: Any) -> str:
    """`412-11-02`, `-130-03` or `-130`, as query strings write dates."""
    if not isinstance(date, dict) or not isinstance(date.get("year"), int):
        return repr(date)
    text = str(date["year"])
    for key in ("month", "day"):
        if isinstance(date.get(key), int):
            text += f"-{date[key]:02d}"
    return text
