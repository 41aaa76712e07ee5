"""scripts/claims_table.py: the held-out measures of a part, from hand-written eval results."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "claims_table.py"
spec = importlib.util.spec_from_file_location("claims_table_under_test", SCRIPT)
claims_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(claims_table)

PROBLEM = "Are there more circles than squares?"


def _result(index: int, output: str, correct: bool, **extra) -> dict:
    return {"origin": f"test.json#{index}", "output": output, "correct": correct, "reward": float(correct), **extra}


def test_consistency_counts_only_completions_that_state_both_counts():
    records = [{"problem": PROBLEM}] * 4
    results = [
        _result(0, "<think>I count 3 circles and 2 squares.</think><answer>A</answer>", True),  # consistent
        _result(1, "<think>I count 3 circles and 2 squares.</think><answer>B</answer>", False),  # contradicts itself
        _result(2, "<think>I count 1 circles and 4 squares.</think><answer>B</answer>", True),  # consistent
        _result(3, "<think>I see shapes.</think><answer>A</answer>", True),  # states nothing: not judged
    ]
    held = claims_table.HELD_OUT["consistency"]
    assert held["consistency rate"](results, records) == pytest.approx(2 / 3)
    assert held["states both counts"](results, records) == pytest.approx(3 / 4)
    assert held["accuracy"](results, records) == pytest.approx(3 / 4)


def test_difficulty_measures_split_by_the_records_label():
    results = [
        _result(0, "", True, groups={"difficulty": "easy"}, skipped_thought=True, length=5),
        _result(1, "", False, groups={"difficulty": "easy"}, skipped_thought=False, length=9),
        _result(2, "", True, groups={"difficulty": "hard"}, skipped_thought=False, length=13),
    ]
    held = claims_table.HELD_OUT["difficulty"]
    assert held["accuracy easy"](results, []) == 0.5 and held["accuracy hard"](results, []) == 1.0
    assert held["skip easy"](results, []) == 0.5 and held["skip hard"](results, []) == 0.0
    assert held["length"](results, []) == 9.0


def test_cells_are_mean_and_standard_error_over_seeds():
    assert claims_table.cell([0.5, 0.7, 0.6]) == "0.600 ± 0.058"
    assert claims_table.cell([None, 0.25]) == "0.250"
    assert claims_table.cell([None]) == "—"
