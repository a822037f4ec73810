"""PostgreSQL and Redis stopped under a running stack of its own, then started again
(tests/soak/faults.py): 503 problems while down, recovery without a restart once back."""

from __future__ import annotations

from pathlib import Path

from tests.soak.faults import faults


def test_outages_answer_503_and_the_stack_recovers_by_itself(tmp_path: Path) -> None:
    result = faults(tmp_path, cycles=1)
    assert result.ok, (result.found, result.notes)
    assert result.done["faults injected"] == 2
    assert result.done["cases tried"] >= 15
