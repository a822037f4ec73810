"""What a scenario did and found, in the shape the soak summary prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The counts that must all be zero; every other count says what was done.
FOUND = ("lost", "duplicated", "leaked", "broken")


@dataclass
class Result:
    """`done`: commands sent, kills, faults injected, cases tried; `found`: what went wrong;
    `notes`: a readable line per problem (empty when everything held)."""

    done: dict[str, int] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FOUND, 0))
    notes: list[str] = field(default_factory=list)

    def problem(self, kind: str, note: str, count: int = 1) -> None:
        """Count `count` problems of `kind` (one of FOUND) and keep a note on them."""
        if count:
            self.found[kind] = self.found.get(kind, 0) + count
            self.notes.append(f"{kind}: {note}")

    @property
    def ok(self) -> bool:
        return not any(self.found.values())

    def as_dict(self) -> dict[str, Any]:
        return {"done": self.done, "found": self.found, "notes": self.notes[:50]}

    def counts(self) -> dict[str, int]:
        return {**self.done, **self.found}
