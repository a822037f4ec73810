"""In-world time: calendars and dates `{year, month?, day?}` that sort by an ordinal."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from commands.errors import InvalidCommand

_GREGORIAN_MONTHS = (
    ("January", 31),
    ("February", 28),
    ("March", 31),
    ("April", 30),
    ("May", 31),
    ("June", 30),
    ("July", 31),
    ("August", 31),
    ("September", 30),
    ("October", 31),
    ("November", 30),
    ("December", 31),
)

DEFAULT_CALENDAR: dict[str, Any] = {
    "months": [{"name": name, "days": days} for name, days in _GREGORIAN_MONTHS],
    "year_zero": False,
    "eras": [],
}

_QUERY_DATE = re.compile(r"^(-?\d+)(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")


@dataclass(frozen=True)
class Calendar:
    """Months (name, days), whether year 0 exists, and named eras."""

    months: tuple[tuple[str, int], ...]
    year_zero: bool
    eras: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calendar:
        return cls(
            months=tuple((m["name"], int(m["days"])) for m in data["months"]),
            year_zero=bool(data.get("year_zero", False)),
            eras=tuple(data.get("eras", ())),
        )

    @property
    def days_per_year(self) -> int:
        return sum(days for _, days in self.months)

    def check(self, date: Any, field: str) -> dict[str, int]:
        """Validate a date against this calendar and return it in canonical form."""
        if not isinstance(date, dict):
            raise InvalidCommand.field(field, "must be an object {year, month?, day?}")
        unknown = set(date) - {"year", "month", "day"}
        if unknown:
            raise InvalidCommand.field(field, f"unknown keys: {', '.join(sorted(unknown))}")
        year, month, day = date.get("year"), date.get("month"), date.get("day")
        if not _is_int(year):
            raise InvalidCommand.field(field, "year must be an integer")
        assert isinstance(year, int)
        if abs(year) > 10**9:
            raise InvalidCommand.field(field, "year is out of range")
        if year == 0 and not self.year_zero:
            raise InvalidCommand.field(field, "this calendar has no year 0")
        result = {"year": year}
        if month is not None:
            if not _is_int(month) or not 1 <= month <= len(self.months):
                raise InvalidCommand.field(field, f"month must be 1..{len(self.months)}")
            result["month"] = month
        if day is not None:
            if month is None:
                raise InvalidCommand.field(field, "a day needs a month")
            days = self.months[month - 1][1]
            if not _is_int(day) or not 1 <= day <= days:
                raise InvalidCommand.field(field, f"day must be 1..{days} in that month")
            result["day"] = day
        return result

    def ordinal(self, date: dict[str, int], *, end_of_period: bool = False) -> int:
        """Days since the calendar's epoch; a partial date maps to its first (or last) day."""
        year = date["year"]
        index = year - 1 if year > 0 and not self.year_zero else year
        month = date.get("month")
        day = date.get("day")
        if month is None:
            month = len(self.months) if end_of_period else 1
            day = None
        if day is None:
            day = self.months[month - 1][1] if end_of_period else 1
        before_month = sum(days for _, days in self.months[: month - 1])
        return index * self.days_per_year + before_month + day - 1

    def ends_before(self, end: dict[str, int], start: dict[str, int]) -> bool:
        """True when `end` precedes `start`, compared at the precision both give."""
        keys = [k for k in ("year", "month", "day") if k in end and k in start]
        return tuple(end[k] for k in keys) < tuple(start[k] for k in keys)


def check_calendar(data: Any) -> dict[str, Any]:
    """Validate a calendar definition and return its canonical form."""
    if not isinstance(data, dict):
        raise InvalidCommand.field("calendar", "must be an object")
    unknown = set(data) - {"months", "year_zero", "eras"}
    if unknown:
        raise InvalidCommand.field("calendar", f"unknown keys: {', '.join(sorted(unknown))}")
    months = data.get("months")
    if not isinstance(months, list) or not 1 <= len(months) <= 100:
        raise InvalidCommand.field("calendar.months", "must be a list of 1..100 months")
    clean_months = []
    for month in months:
        if (
            not isinstance(month, dict)
            or not isinstance(month.get("name"), str)
            or not 1 <= len(month["name"]) <= 200
            or not _is_int(month.get("days"))
            or not 1 <= month["days"] <= 1000
        ):
            raise InvalidCommand.field(
                "calendar.months", "each month needs a name (1-200 chars) and days (1-1000)"
            )
        clean_months.append({"name": month["name"], "days": month["days"]})
    year_zero = data.get("year_zero", False)
    if not isinstance(year_zero, bool):
        raise InvalidCommand.field("calendar.year_zero", "must be a boolean")
    eras = data.get("eras", [])
    if not isinstance(eras, list) or len(eras) > 100:
        raise InvalidCommand.field("calendar.eras", "must be a list of at most 100 eras")
    clean_eras = []
    for era in eras:
        if (
            not isinstance(era, dict)
            or not isinstance(era.get("name"), str)
            or not 1 <= len(era["name"]) <= 200
            or not _is_int(era.get("start_year"))
        ):
            raise InvalidCommand.field(
                "calendar.eras", "each era needs a name (1-200 chars) and an integer start_year"
            )
        clean_eras.append({"name": era["name"], "start_year": era["start_year"]})
    return {"months": clean_months, "year_zero": year_zero, "eras": clean_eras}


def parse_query_date(text: str) -> dict[str, int]:
    """Parse `YEAR[-MONTH[-DAY]]` as used in query strings (`-130`, `412-11-02`)."""
    match = _QUERY_DATE.match(text.strip())
    if not match:
        raise ValueError(f"not an in-world date: {text!r} (expected YEAR[-MONTH[-DAY]])")
    year, month, day = match.groups()
    date = {"year": int(year)}
    if month is not None:
        date["month"] = int(month)
    if day is not None:
        date["day"] = int(day)
    return date


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
