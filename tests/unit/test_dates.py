"""In-world time: calendars, date checks, ordinals and query-string dates."""

from __future__ import annotations

from typing import Any

import pytest

from commands.dates import DEFAULT_CALENDAR, Calendar, check_calendar, parse_query_date
from commands.errors import InvalidCommand


@pytest.fixture
def with_year_zero() -> Calendar:
    """A two-month calendar (40 + 20 days) that has a year 0."""
    return Calendar(months=(("Frost", 40), ("Thaw", 20)), year_zero=True)


def refusal(calendar: Calendar, date: Any, field: str = "start") -> dict[str, list[str]]:
    """The per-field errors `Calendar.check` gives for `date`."""
    with pytest.raises(InvalidCommand) as refused:
        calendar.check(date, field)
    return refused.value.errors


class TestCheckingADate:
    def test_accepts_a_full_date(self, calendar: Calendar) -> None:
        assert calendar.check({"year": 412, "month": 11, "day": 2}, "start") == {
            "year": 412,
            "month": 11,
            "day": 2,
        }

    def test_accepts_a_year_alone_and_a_year_with_a_month(self, calendar: Calendar) -> None:
        assert calendar.check({"year": -130}, "start") == {"year": -130}
        assert calendar.check({"year": -130, "month": 3}, "start") == {"year": -130, "month": 3}

    def test_drops_explicit_nulls_from_the_canonical_form(self, calendar: Calendar) -> None:
        assert calendar.check({"year": 5, "month": None, "day": None}, "start") == {"year": 5}

    def test_accepts_the_last_day_of_a_month(self, calendar: Calendar) -> None:
        assert calendar.check({"year": 1, "month": 2, "day": 28}, "start")["day"] == 28

    @pytest.mark.parametrize("month", [0, 13, -1])
    def test_refuses_a_month_outside_the_calendar(self, calendar: Calendar, month: int) -> None:
        assert refusal(calendar, {"year": 1, "month": month}) == {"start": ["month must be 1..12"]}

    def test_refuses_a_day_without_a_month(self, calendar: Calendar) -> None:
        assert refusal(calendar, {"year": 1, "day": 3}) == {"start": ["a day needs a month"]}

    @pytest.mark.parametrize(("month", "day"), [(2, 29), (4, 31), (1, 0), (1, 32)])
    def test_refuses_a_day_out_of_range(self, calendar: Calendar, month: int, day: int) -> None:
        errors = refusal(calendar, {"year": 1, "month": month, "day": day})
        assert list(errors) == ["start"]
        assert errors["start"][0].startswith("day must be 1..")

    def test_refuses_year_zero_when_the_calendar_has_none(self, calendar: Calendar) -> None:
        assert refusal(calendar, {"year": 0}) == {"start": ["this calendar has no year 0"]}

    def test_accepts_year_zero_when_the_calendar_has_one(self, with_year_zero: Calendar) -> None:
        assert with_year_zero.check({"year": 0, "month": 2, "day": 20}, "start") == {
            "year": 0,
            "month": 2,
            "day": 20,
        }

    def test_checks_days_against_the_calendars_own_months(self, with_year_zero: Calendar) -> None:
        assert with_year_zero.check({"year": 3, "month": 1, "day": 40}, "start")["day"] == 40
        assert "start" in refusal(with_year_zero, {"year": 3, "month": 2, "day": 21})
        assert "start" in refusal(with_year_zero, {"year": 3, "month": 3})

    def test_refuses_unknown_keys(self, calendar: Calendar) -> None:
        assert refusal(calendar, {"year": 1, "hour": 3, "era": "x"}) == {
            "start": ["unknown keys: era, hour"]
        }

    @pytest.mark.parametrize(
        "date",
        [
            {"year": True},
            {"year": 1, "month": True},
            {"year": 1, "month": 1, "day": True},
            {"year": False},
        ],
    )
    def test_refuses_booleans_as_integers(self, calendar: Calendar, date: dict[str, Any]) -> None:
        assert "start" in refusal(calendar, date)

    @pytest.mark.parametrize("year", [None, "412", 1.5, 10**9 + 1, -(10**9) - 1])
    def test_refuses_a_year_that_is_not_a_sane_integer(self, calendar: Calendar, year: Any) -> None:
        assert "start" in refusal(calendar, {"year": year})

    @pytest.mark.parametrize("date", [None, "412-11-02", 412, [412, 11]])
    def test_refuses_a_date_that_is_not_an_object(self, calendar: Calendar, date: Any) -> None:
        assert "start" in refusal(calendar, date)

    def test_names_the_field_it_was_given(self, calendar: Calendar) -> None:
        assert list(refusal(calendar, {"year": 0}, field="end")) == ["end"]


class TestOrdinals:
    def test_year_one_starts_at_zero_without_year_zero(self, calendar: Calendar) -> None:
        assert calendar.ordinal({"year": 1, "month": 1, "day": 1}) == 0
        assert calendar.ordinal({"year": 2, "month": 1, "day": 1}) == 365

    def test_counts_days_through_the_months(self, calendar: Calendar) -> None:
        assert calendar.ordinal({"year": 1, "month": 3, "day": 1}) == 31 + 28

    def test_the_last_day_of_year_minus_one_is_the_day_before_year_one(
        self, calendar: Calendar
    ) -> None:
        last_bc = calendar.ordinal({"year": -1, "month": 12, "day": 31})
        first_ad = calendar.ordinal({"year": 1, "month": 1, "day": 1})
        assert first_ad - last_bc == 1

    def test_year_zero_sits_between_minus_one_and_one(self, with_year_zero: Calendar) -> None:
        assert with_year_zero.ordinal({"year": -1, "month": 2, "day": 20}) == -1
        assert with_year_zero.ordinal({"year": 0}) == 0
        assert with_year_zero.ordinal({"year": 1}) == 60

    def test_sorts_dates_in_in_world_order_across_negative_years(self, calendar: Calendar) -> None:
        in_order = [
            {"year": -1000},
            {"year": -130, "month": 3, "day": 1},
            {"year": -130, "month": 3, "day": 15},
            {"year": -2, "month": 12, "day": 31},
            {"year": -1, "month": 1, "day": 1},
            {"year": 1, "month": 1, "day": 1},
            {"year": 412, "month": 11, "day": 2},
            {"year": 3001, "month": 9, "day": 22},
        ]
        shuffled = [in_order[i] for i in (5, 2, 7, 0, 4, 6, 1, 3)]
        assert sorted(shuffled, key=calendar.ordinal) == in_order

    def test_sorts_across_year_zero(self, with_year_zero: Calendar) -> None:
        dates = [{"year": 1}, {"year": -1, "month": 2}, {"year": 0, "month": 2}, {"year": 0}]
        assert sorted(dates, key=with_year_zero.ordinal) == [
            {"year": -1, "month": 2},
            {"year": 0},
            {"year": 0, "month": 2},
            {"year": 1},
        ]

    def test_a_partial_date_starts_on_the_first_day_of_its_period(self, calendar: Calendar) -> None:
        assert calendar.ordinal({"year": 5}) == calendar.ordinal({"year": 5, "month": 1, "day": 1})
        assert calendar.ordinal({"year": 5, "month": 4}) == calendar.ordinal(
            {"year": 5, "month": 4, "day": 1}
        )

    def test_a_partial_date_ends_on_the_last_day_of_its_period(self, calendar: Calendar) -> None:
        assert calendar.ordinal({"year": 5}, end_of_period=True) == calendar.ordinal(
            {"year": 5, "month": 12, "day": 31}
        )
        assert calendar.ordinal({"year": 5, "month": 2}, end_of_period=True) == calendar.ordinal(
            {"year": 5, "month": 2, "day": 28}
        )

    def test_a_full_date_is_its_own_period(self, calendar: Calendar) -> None:
        day = {"year": -7, "month": 6, "day": 9}
        assert calendar.ordinal(day, end_of_period=True) == calendar.ordinal(day)

    def test_a_partial_date_covers_the_dates_inside_it(self, calendar: Calendar) -> None:
        inside = calendar.ordinal({"year": -130, "month": 3, "day": 17})
        assert calendar.ordinal({"year": -130, "month": 3}) <= inside
        assert inside <= calendar.ordinal({"year": -130, "month": 3}, end_of_period=True)
        assert calendar.ordinal({"year": -130}, end_of_period=True) < calendar.ordinal(
            {"year": -129}
        )

    def test_days_per_year_is_the_sum_of_the_months(
        self, calendar: Calendar, with_year_zero: Calendar
    ) -> None:
        assert calendar.days_per_year == 365
        assert with_year_zero.days_per_year == 60


class TestEndsBefore:
    @pytest.mark.parametrize(
        ("end", "start"),
        [
            ({"year": 3001, "month": 9, "day": 21}, {"year": 3001, "month": 9, "day": 22}),
            ({"year": 3001, "month": 8}, {"year": 3001, "month": 9, "day": 22}),
            ({"year": 3000}, {"year": 3001, "month": 1}),
            ({"year": -5}, {"year": -4}),
            ({"year": -1, "month": 12, "day": 31}, {"year": 1}),
        ],
    )
    def test_is_true_when_the_end_precedes_the_start(
        self, calendar: Calendar, end: dict[str, int], start: dict[str, int]
    ) -> None:
        assert calendar.ends_before(end, start)

    @pytest.mark.parametrize(
        ("end", "start"),
        [
            ({"year": 3001, "month": 9}, {"year": 3001, "month": 9, "day": 22}),
            ({"year": 3001, "month": 9, "day": 22}, {"year": 3001, "month": 9}),
            ({"year": 3001}, {"year": 3001, "month": 12, "day": 31}),
            ({"year": 3001, "month": 9, "day": 22}, {"year": 3001, "month": 9, "day": 22}),
            ({"year": 3001, "month": 10, "day": 1}, {"year": 3001, "month": 9, "day": 30}),
            ({"year": -4}, {"year": -5, "month": 6}),
        ],
    )
    def test_is_false_when_equal_or_later_at_the_shared_precision(
        self, calendar: Calendar, end: dict[str, int], start: dict[str, int]
    ) -> None:
        assert not calendar.ends_before(end, start)


class TestCheckingACalendar:
    def test_accepts_the_default_calendar_unchanged(self) -> None:
        assert check_calendar(DEFAULT_CALENDAR) == DEFAULT_CALENDAR

    def test_fills_in_defaults_and_drops_extra_month_keys(self) -> None:
        checked = check_calendar({"months": [{"name": "Long", "days": 400, "colour": "red"}]})
        assert checked == {
            "months": [{"name": "Long", "days": 400}],
            "year_zero": False,
            "eras": [],
        }

    def test_keeps_year_zero_and_eras(self) -> None:
        checked = check_calendar(
            {
                "months": [{"name": "Frost", "days": 40}],
                "year_zero": True,
                "eras": [{"name": "Age of Ash", "start_year": -300}],
            }
        )
        assert checked["year_zero"] is True
        assert checked["eras"] == [{"name": "Age of Ash", "start_year": -300}]

    def test_the_checked_form_makes_a_working_calendar(self) -> None:
        rules = Calendar.from_dict(
            check_calendar({"months": [{"name": "A", "days": 10}], "year_zero": True})
        )
        assert rules.check({"year": 0, "month": 1, "day": 10}, "start") == {
            "year": 0,
            "month": 1,
            "day": 10,
        }

    @pytest.mark.parametrize(
        ("calendar", "field"),
        [
            (None, "calendar"),
            ([], "calendar"),
            ({"months": [{"name": "A", "days": 1}], "weeks": 7}, "calendar"),
            ({}, "calendar.months"),
            ({"months": []}, "calendar.months"),
            ({"months": [{"name": "A", "days": 1}] * 101}, "calendar.months"),
            ({"months": "January"}, "calendar.months"),
            ({"months": [{"days": 30}]}, "calendar.months"),
            ({"months": [{"name": "", "days": 30}]}, "calendar.months"),
            ({"months": [{"name": "A" * 201, "days": 30}]}, "calendar.months"),
            ({"months": [{"name": "A", "days": 0}]}, "calendar.months"),
            ({"months": [{"name": "A", "days": 1001}]}, "calendar.months"),
            ({"months": [{"name": "A", "days": True}]}, "calendar.months"),
            ({"months": [{"name": "A", "days": "30"}]}, "calendar.months"),
            ({"months": ["A"]}, "calendar.months"),
            ({"months": [{"name": "A", "days": 1}], "year_zero": "yes"}, "calendar.year_zero"),
            ({"months": [{"name": "A", "days": 1}], "year_zero": 1}, "calendar.year_zero"),
            ({"months": [{"name": "A", "days": 1}], "eras": {}}, "calendar.eras"),
            (
                {
                    "months": [{"name": "A", "days": 1}],
                    "eras": [{"name": "E", "start_year": 1}] * 101,
                },
                "calendar.eras",
            ),
            ({"months": [{"name": "A", "days": 1}], "eras": [{"name": "E"}]}, "calendar.eras"),
            (
                {"months": [{"name": "A", "days": 1}], "eras": [{"name": "", "start_year": 1}]},
                "calendar.eras",
            ),
            (
                {"months": [{"name": "A", "days": 1}], "eras": [{"name": "E", "start_year": True}]},
                "calendar.eras",
            ),
        ],
    )
    def test_refuses_a_bad_definition_keyed_by_the_field(self, calendar: Any, field: str) -> None:
        with pytest.raises(InvalidCommand) as refused:
            check_calendar(calendar)
        assert list(refused.value.errors) == [field]


class TestParsingAQueryDate:
    @pytest.mark.parametrize(
        ("text", "date"),
        [
            ("-130", {"year": -130}),
            ("-130-03", {"year": -130, "month": 3}),
            ("412-11-02", {"year": 412, "month": 11, "day": 2}),
            ("412-1-2", {"year": 412, "month": 1, "day": 2}),
            ("0", {"year": 0}),
            ("  3001-09 ", {"year": 3001, "month": 9}),
        ],
    )
    def test_parses_year_month_day(self, text: str, date: dict[str, int]) -> None:
        assert parse_query_date(text) == date

    @pytest.mark.parametrize(
        "text", ["", "abc", "412-", "412--11", "412-11-02-01", "412-111", "+412", "12.5", "412/11"]
    )
    def test_refuses_garbage(self, text: str) -> None:
        with pytest.raises(ValueError, match="not an in-world date"):
            parse_query_date(text)
