"""The offline provider: real, deterministic answers for link-mentions and consistency."""

from __future__ import annotations

from typing import Any

import pytest

from suggestions.providers.base import NeedsLanguageModel, ProviderAnswer
from suggestions.providers.offline import OfflineProvider
from tests.unit.suggestion_worlds import context, element, event, location, timeline


def suggest(kind: str, **world: Any) -> ProviderAnswer:
    return OfflineProvider().suggest(kind, context(**world), {})


def link(**world: Any) -> ProviderAnswer:
    return suggest("link-mentions", **world)


def check(**world: Any) -> ProviderAnswer:
    return suggest("consistency", **world)


def kinds(answer: ProviderAnswer) -> list[tuple[str, str]]:
    return [(f["kind"], f["entity"]) for f in answer.flags]


class TestLinkingNamedElements:
    def test_an_element_named_in_the_title_is_linked(self) -> None:
        ada = element("Ada Quill")
        crowning = event("Ada Quill is crowned", version=12)
        answer = link(elements=[ada], events=[crowning])
        assert answer.edits == [
            {
                "command": "update",
                "target": f"timeline-events/{crowning['id']}",
                "body": {"element_ids": [ada["id"]]},
                "expected_version": 12,
            }
        ]
        assert answer.flags == []

    def test_a_name_in_the_description_counts_and_current_links_are_kept(self) -> None:
        ada, bram = element("Ada"), element("Bram")
        duel = event("The duel", "Bram challenges Ada at dawn.", elements=[ada])
        answer = link(elements=[ada, bram], events=[duel])
        assert [e["body"] for e in answer.edits] == [{"element_ids": [ada["id"], bram["id"]]}]

    def test_names_already_linked_give_no_edit(self) -> None:
        ada = element("Ada")
        answer = link(elements=[ada], events=[event("Ada sails", "Ada again", elements=[ada])])
        assert answer.edits == []
        assert answer.flags == []

    def test_only_whole_words_match(self) -> None:
        ann, karsa = element("Ann"), location("Karsa")
        answer = link(
            elements=[ann],
            locations=[karsa],
            events=[event("The Annals of Karsas", "annotated by Joanne")],
        )
        assert answer.edits == []

    def test_letter_case_does_not_matter(self) -> None:
        ada = element("Ada Quill")
        answer = link(elements=[ada], events=[event("the trial of ADA QUILL")])
        assert answer.edits[0]["body"] == {"element_ids": [ada["id"]]}

    def test_the_longest_name_at_a_place_wins(self) -> None:
        karsa, keep = element("Karsa"), location("Karsa Keep")
        answer = link(elements=[karsa], locations=[keep], events=[event("Siege of Karsa Keep")])
        assert [e["body"] for e in answer.edits] == [{"location_id": keep["id"]}]

    def test_elements_are_added_in_the_order_the_world_holds_them(self) -> None:
        first, second = element("Orrin"), element("Sela")
        answer = link(elements=[first, second], events=[event("Sela meets Orrin")])
        assert answer.edits[0]["body"] == {"element_ids": [first["id"], second["id"]]}

    def test_namesakes_are_flagged_not_guessed(self) -> None:
        one, two = element("John"), element("John")
        meeting = event("John arrives")
        answer = link(elements=[one, two], events=[meeting])
        assert answer.edits == []
        assert kinds(answer) == [("ambiguous-mention", f"timeline-events/{meeting['id']}")]

    def test_a_linked_namesake_settles_the_question(self) -> None:
        one, two = element("John"), element("John")
        answer = link(elements=[one, two], events=[event("John arrives", elements=[two])])
        assert answer.edits == []
        assert answer.flags == []

    def test_a_target_element_limits_the_search_to_its_name(self) -> None:
        ada, bram = element("Ada"), element("Bram")
        meeting = event("Ada meets Bram")
        world = context(elements=[ada, bram], events=[meeting], target=f"elements/{bram['id']}")
        answer = OfflineProvider().suggest("link-mentions", world, {})
        assert [e["body"] for e in answer.edits] == [{"element_ids": [bram["id"]]}]

    def test_answers_are_deterministic(self) -> None:
        people = [element(name) for name in ("Ada", "Bram", "Cyr", "Dov")]
        events = [event(f"{a['name']} and {b['name']}") for a in people for b in people if a != b]
        first = link(elements=people, events=events)
        again = link(elements=list(people), events=list(events))
        assert first == again
        assert len(first.edits) == len(events)


class TestLinkingNamedLocations:
    def test_an_event_without_a_location_gets_the_named_one(self) -> None:
        harbour = location("Glass Harbour")
        landing = event("Landing", "They land at Glass Harbour.")
        answer = link(locations=[harbour], events=[landing])
        assert answer.edits[0]["body"] == {"location_id": harbour["id"]}

    def test_an_event_with_a_location_keeps_it(self) -> None:
        harbour, hills = location("Glass Harbour"), location("Red Hills")
        answer = link(locations=[harbour, hills], events=[event("Red Hills", at=harbour)])
        assert answer.edits == []

    def test_the_most_specific_of_nested_places_is_chosen(self) -> None:
        realm = location("Northern Reach")
        city = location("Karsa", parent=realm)
        answer = link(locations=[realm, city], events=[event("Fire in Karsa, Northern Reach")])
        assert answer.edits[0]["body"] == {"location_id": city["id"]}

    def test_unrelated_places_are_flagged(self) -> None:
        one, two = location("Karsa"), location("Vell")
        march = event("The march from Karsa to Vell")
        answer = link(locations=[one, two], events=[march])
        assert answer.edits == []
        assert kinds(answer) == [("ambiguous-mention", f"timeline-events/{march['id']}")]

    def test_elements_and_location_come_in_one_edit(self) -> None:
        ada, karsa = element("Ada"), location("Karsa")
        answer = link(elements=[ada], locations=[karsa], events=[event("Ada reaches Karsa")])
        assert answer.edits[0]["body"] == {"element_ids": [ada["id"]], "location_id": karsa["id"]}


SHORT_FEBRUARY = {
    "months": [{"name": "Frost", "days": 30}, {"name": "Thaw", "days": 20}],
    "year_zero": False,
    "eras": [],
}


class TestLifetimes:
    def test_an_event_before_a_birth_is_flagged(self) -> None:
        ada = element("Ada", born={"year": 120}, died="180")
        early = event("Early", start={"year": 100}, elements=[ada])
        answer = check(elements=[ada], events=[early])
        assert kinds(answer) == [("before-lifetime", f"timeline-events/{early['id']}")]
        assert "Ada" in answer.flags[0]["message"]
        assert "120" in answer.flags[0]["message"]

    def test_an_event_after_a_death_is_flagged(self) -> None:
        ada = element("Ada", born="120-03", died="180-06-02")
        late = event("Late", start={"year": 180, "month": 6, "day": 3}, elements=[ada])
        answer = check(elements=[ada], events=[late])
        assert kinds(answer) == [("after-lifetime", f"timeline-events/{late['id']}")]

    def test_founded_and_fell_count_like_born_and_died(self) -> None:
        order = element("The Order", founded="300", fell={"year": 350})
        before = event("Before", start={"year": 299}, elements=[order])
        after = event("After", start={"year": 351}, elements=[order])
        answer = check(elements=[order], events=[before, after])
        assert [k for k, _ in kinds(answer)] == ["before-lifetime", "after-lifetime"]

    def test_events_within_the_lifetime_or_at_its_edges_pass(self) -> None:
        ada = element("Ada", born={"year": 120, "month": 3}, died={"year": 180})
        same_year = event("Birth year", start={"year": 120}, elements=[ada])
        spanning = event("Long war", start={"year": 110}, end={"year": 125}, elements=[ada])
        last_day = event("Last day", start={"year": 180, "month": 12, "day": 31}, elements=[ada])
        answer = check(elements=[ada], events=[same_year, spanning, last_day])
        assert answer.flags == []
        assert answer.edits == []

    def test_unreadable_lifetime_metadata_is_ignored(self) -> None:
        ada = element("Ada", born="long ago", died=True)
        answer = check(elements=[ada], events=[event("X", start={"year": 1}, elements=[ada])])
        assert answer.flags == []

    def test_events_not_involving_the_element_are_not_flagged(self) -> None:
        ada = element("Ada", born="120")
        answer = check(elements=[ada], events=[event("Before Ada", start={"year": 100})])
        assert answer.flags == []


class TestSpansAndCalendars:
    def test_an_end_before_its_start_is_set_to_the_start(self) -> None:
        backwards = event("Backwards", start={"year": 5, "month": 2}, end={"year": 4}, version=9)
        answer = check(events=[backwards])
        assert answer.edits == [
            {
                "command": "update",
                "target": f"timeline-events/{backwards['id']}",
                "body": {"end": {"year": 5, "month": 2}},
                "expected_version": 9,
            }
        ]

    def test_a_day_past_a_shortened_month_is_clamped(self) -> None:
        thaw = event(
            "Thaw feast",
            start={"year": 5, "month": 2, "day": 25},
            end={"year": 5, "month": 2, "day": 28},
        )
        answer = check(events=[thaw], calendar=SHORT_FEBRUARY)
        assert answer.edits[0]["body"] == {
            "start": {"year": 5, "month": 2, "day": 20},
            "end": {"year": 5, "month": 2, "day": 20},
        }
        assert answer.flags == []

    def test_a_month_the_calendar_lost_is_flagged(self) -> None:
        lost = event("Midwinter", start={"year": 5, "month": 11})
        answer = check(events=[lost], calendar=SHORT_FEBRUARY)
        assert answer.edits == []
        assert kinds(answer) == [("date-outside-calendar", f"timeline-events/{lost['id']}")]

    def test_a_consistent_world_gives_nothing(self) -> None:
        ada = element("Ada", born="100", died="200")
        line = timeline("Reign", exclusive=True)
        events = [
            event("A", on=line, start={"year": 150}, end={"year": 160}, elements=[ada]),
            event("B", on=line, start={"year": 161}, elements=[ada]),
        ]
        answer = check(elements=[ada], timelines=[line], events=events)
        assert answer == ProviderAnswer([], [], None, answer.prompt_version, {})


class TestExclusiveTimelines:
    def test_overlapping_events_are_flagged(self) -> None:
        line = timeline("Kings of Vell", exclusive=True)
        first = event("Reign of Oda", on=line, start={"year": 10}, end={"year": 30})
        second = event("Reign of Ulm", on=line, start={"year": 25}, end={"year": 40})
        third = event("Reign of Pell", on=line, start={"year": 41})
        answer = check(timelines=[line], events=[first, second, third])
        assert kinds(answer) == [("overlap", f"timeline-events/{second['id']}")]
        assert "Reign of Oda" in answer.flags[0]["message"]

    def test_a_partial_date_covers_its_whole_period(self) -> None:
        line = timeline("Kings", exclusive=True)
        year = event("All of year 10", on=line, start={"year": 10})
        march = event("March of year 10", on=line, start={"year": 10, "month": 3})
        answer = check(timelines=[line], events=[year, march])
        assert [k for k, _ in kinds(answer)] == ["overlap"]

    def test_timelines_not_marked_exclusive_may_overlap(self) -> None:
        line = timeline("Wars", exclusive=False)
        events = [
            event("War one", on=line, start={"year": 10}, end={"year": 30}),
            event("War two", on=line, start={"year": 20}, end={"year": 40}),
        ]
        assert check(timelines=[line], events=events).flags == []


class TestExpand:
    def test_expand_needs_a_language_model_and_is_not_retried(self) -> None:
        with pytest.raises(NeedsLanguageModel, match="needs a language model") as raised:
            suggest("expand", elements=[element("Ada")])
        assert raised.value.retryable is False
