"""RFC 7386 JSON merge patch, checked against the RFC's own examples."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from commands.merge_patch import apply_merge_patch

# RFC 7386, Appendix A: ORIGINAL, PATCH, RESULT.
APPENDIX_A = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


class TestApplyMergePatch:
    @pytest.mark.parametrize(("original", "patch", "result"), APPENDIX_A)
    def test_matches_the_rfc_appendix_a_table(self, original: Any, patch: Any, result: Any) -> None:
        assert apply_merge_patch(original, patch) == result

    def test_matches_the_rfc_section_3_example(self) -> None:
        original = {
            "title": "Goodbye!",
            "author": {"givenName": "John", "familyName": "Doe"},
            "tags": ["example", "sample"],
            "content": "This will be unchanged",
        }
        patch = {
            "title": "Hello!",
            "phoneNumber": "+01-123-456-7890",
            "author": {"familyName": None},
            "tags": ["example"],
        }
        assert apply_merge_patch(original, patch) == {
            "title": "Hello!",
            "author": {"givenName": "John"},
            "tags": ["example"],
            "content": "This will be unchanged",
            "phoneNumber": "+01-123-456-7890",
        }

    def test_removing_a_missing_key_is_a_no_op(self) -> None:
        assert apply_merge_patch({"a": 1}, {"b": None}) == {"a": 1}

    def test_an_empty_patch_changes_nothing(self) -> None:
        assert apply_merge_patch({"a": {"b": 1}}, {}) == {"a": {"b": 1}}

    def test_nulls_inside_arrays_are_kept_as_values(self) -> None:
        assert apply_merge_patch({}, {"a": [{"b": None}, None]}) == {"a": [{"b": None}, None]}

    def test_merges_nested_objects_key_by_key(self) -> None:
        original = {"stats": {"hp": 10, "mp": 3}, "lore": "old"}
        patch = {"stats": {"hp": 12, "xp": {"level": 2}}}
        assert apply_merge_patch(original, patch) == {
            "stats": {"hp": 12, "mp": 3, "xp": {"level": 2}},
            "lore": "old",
        }

    def test_modifies_neither_argument(self) -> None:
        original = {"a": {"b": "c", "d": [1]}, "e": None}
        patch = {"a": {"b": None, "x": {"y": 1}}, "e": 2}
        original_before, patch_before = copy.deepcopy(original), copy.deepcopy(patch)
        result = apply_merge_patch(original, patch)
        assert result == {"a": {"d": [1], "x": {"y": 1}}, "e": 2}
        assert original == original_before
        assert patch == patch_before
