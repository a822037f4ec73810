"""Answers of an OpenAI-compatible endpoint are untrusted: malformed, oddly shaped, extra or
huge input becomes dropped edits or a provider failure, never a crash."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.application import WorldHistory
from commands.messages import AddEntity, CompleteProposal, CreateWorld, RequestSuggestion
from commands.provenance import Provenance
from suggestions.providers.answer_parsing import MAX_EDIT_BYTES, parse_completion
from suggestions.providers.base import ProviderAnswer, ProviderError


def envelope(content: Any, **extra: Any) -> bytes:
    """A chat-completions response whose message content is `content` (JSON-encoded if not
    already a string)."""
    text = content if isinstance(content, str) else json.dumps(content)
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "fake-model-2",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
        **extra,
    }
    return json.dumps(body).encode()


def parse(raw: bytes, max_edits: int = 100) -> ProviderAnswer:
    return parse_completion(raw, model="configured", prompt_version="v-test", max_edits=max_edits)


EDIT = {"command": "update", "target": "elements/abc", "body": {"summary": "x"}}


class TestWellFormedAnswers:
    def test_edits_flags_model_and_usage_are_read(self) -> None:
        flag = {"kind": "overlap", "entity": "timeline-events/x", "message": "overlaps y"}
        answer = parse(envelope({"edits": [EDIT], "flags": [flag]}))
        assert answer.edits == [EDIT]
        assert answer.flags == [flag]
        assert answer.model == "fake-model-2"
        assert answer.prompt_version == "v-test"
        assert answer.usage == {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}

    def test_a_fenced_json_answer_is_accepted(self) -> None:
        answer = parse(envelope("```json\n" + json.dumps({"edits": [EDIT]}) + "\n```"))
        assert answer.edits == [EDIT]

    def test_the_configured_model_stands_in_when_the_response_names_none(self) -> None:
        raw = json.loads(envelope({"edits": []}))
        del raw["model"], raw["usage"]
        answer = parse(json.dumps(raw).encode())
        assert answer.model == "configured"
        assert answer.usage == {}


class TestMalformedResponses:
    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (b"<html>bad gateway</html>", "not JSON"),
            (b"[1, 2]", "not a JSON object"),
            (b"{}", "no choices"),
            (json.dumps({"choices": []}).encode(), "no choices"),
            (json.dumps({"choices": [{"message": "hi"}]}).encode(), "no message"),
            (json.dumps({"error": {"message": "quota exceeded"}}).encode(), "quota exceeded"),
            (envelope("I think you should link Ada."), "not valid JSON"),
            (envelope(""), "no text content"),
            (envelope([EDIT]), "not a JSON object"),
            (envelope({"edits": {"0": EDIT}}), "not a list"),
            (envelope('{"edits": [{"command": "update", "body": {"x": NaN}}]}'), "not valid"),
            (envelope("[" * 100_000 + "]" * 100_000), "not valid JSON"),
            (envelope(json.dumps({"edits": [EDIT]})[:-5]), "not valid JSON"),
        ],
    )
    def test_is_a_provider_failure_with_a_reason(self, raw: bytes, reason: str) -> None:
        with pytest.raises(ProviderError, match=reason) as raised:
            parse(raw)
        assert raised.value.retryable is False

    def test_a_refusal_is_a_failure(self) -> None:
        raw = json.loads(envelope({"edits": []}))
        raw["choices"][0]["message"]["refusal"] = "I cannot help with that."
        with pytest.raises(ProviderError, match="refused"):
            parse(json.dumps(raw).encode())


class TestOddEdits:
    def test_extra_fields_are_stripped(self) -> None:
        edit = {**EDIT, "index": 99, "apply_now": True, "reason": "because"}
        assert parse(envelope({"edits": [edit], "notes": "extra"})).edits == [EDIT]

    def test_edits_of_the_wrong_shape_pass_through_for_the_write_side_to_drop(self) -> None:
        answer = parse(envelope({"edits": ["link Ada", 42, None, [EDIT]]}))
        assert answer.edits == ["link Ada", 42, None, [EDIT]]

    def test_a_huge_edit_becomes_a_small_stand_in(self) -> None:
        huge = {**EDIT, "body": {"summary": "x" * (MAX_EDIT_BYTES + 10)}}
        (edit,) = parse(envelope({"edits": [huge]})).edits
        assert edit["command"] == "update"
        assert "omitted" in edit["body"]
        assert len(json.dumps(edit)) < 500

    def test_a_deeply_nested_edit_becomes_a_stand_in(self) -> None:
        deep: Any = "bottom"
        for _ in range(200):
            deep = [deep]
        (edit,) = parse(envelope({"edits": [{**EDIT, "body": {"metadata": deep}}]})).edits
        assert "nested deeper" in edit["body"]

    def test_too_many_edits_are_cut_and_flagged(self) -> None:
        answer = parse(envelope({"edits": [EDIT] * 30}), max_edits=10)
        assert len(answer.edits) == 10
        assert [f["kind"] for f in answer.flags] == ["answer-cut"]

    def test_characters_postgres_cannot_store_are_removed(self) -> None:
        edit = {**EDIT, "body": {"summary": "a\u0000b\ud800c"}}
        (clean,) = parse(envelope({"edits": [edit]})).edits
        assert clean["body"]["summary"] in ("ab?c", "abc")
        clean_json = json.dumps(clean, ensure_ascii=False)
        clean_json.encode("utf-8")  # would raise on a lone surrogate

    def test_malformed_flags_and_usage_are_left_out(self) -> None:
        flags = [
            "not a flag",
            {"kind": "x"},
            {"kind": 3, "entity": ["a"], "message": "m" * 5000, "extra": 1},
        ]
        raw = envelope({"edits": [], "flags": flags}, usage={"prompt_tokens": "many", "x": 1})
        answer = parse(raw)
        assert answer.flags == [{"kind": None, "entity": None, "message": "m" * 1000}]
        assert answer.usage == {}


def _answer_edits() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=30)
    json_values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    )
    targets = st.sampled_from(
        ["elements", "elements/e1", "timeline-events/ev1", "locations/zz", "timelines/", "x/y"]
    ) | st.text(max_size=20)
    bodies = st.dictionaries(
        st.sampled_from(
            [
                "name",
                "kind",
                "title",
                "start",
                "end",
                "element_ids",
                "location_id",
                "parent_id",
                "metadata",
                "tags",
                "timeline_id",
                "summary",
                "description",
            ]
        ),
        json_values,
        max_size=4,
    )
    edit = st.fixed_dictionaries(
        {"command": st.sampled_from(["create", "update", "delete", "rename"]) | scalars},
        optional={
            "target": targets | json_values,
            "body": bodies | json_values,
            "expected_version": st.integers(-2, 10) | scalars,
        },
    )
    return st.lists(edit | json_values, max_size=6)


class TestNoAnswerCrashesTheWriteSide:
    """Whatever the parser lets through, recording it drops bad edits with a reason."""

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(edits=_answer_edits())
    def test_completing_a_proposal_with_any_answer_never_crashes(self, edits: list[Any]) -> None:
        app = WorldHistory()
        world_id, proposal_id = uuid4(), uuid4()
        owner = Provenance(actor="owner")
        app.handle(CreateWorld(world_id, owner_id="owner", name="W"), owner)
        app.handle(AddEntity(world_id, "main", "elements", "e1", {"kind": "k", "name": "E"}), owner)
        app.handle(AddEntity(world_id, "main", "timelines", "t1", {"name": "T"}), owner)
        app.handle(
            AddEntity(
                world_id,
                "main",
                "timeline_events",
                "ev1",
                {"timeline_id": "t1", "title": "Ev", "start": {"year": 1}},
            ),
            owner,
        )
        app.handle(RequestSuggestion(world_id, "main", proposal_id, "expand"), owner)
        answer = parse(envelope({"edits": edits}))
        app.handle(
            CompleteProposal(proposal_id, answer.edits, "openai", "m", "v", answer.flags),
            Provenance(actor="ai-worker"),
        )
        proposal = app.proposal(proposal_id)
        assert proposal.status == "ready"
        recorded: Any = list(app.events.get(proposal_id))[-1]
        assert len(recorded.edits) + len(recorded.dropped) == len(answer.edits)
        assert all(isinstance(d["reason"], str) and d["reason"] for d in recorded.dropped)
