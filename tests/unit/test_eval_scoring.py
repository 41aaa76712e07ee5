"""The evaluation's rule scorer: strict and lenient letter matching, and the scripts' no-tag fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_pipelines.schema import Sample
from vlm_rl.eval.runner import rule_scorer

MC = Sample(
    sample_id="1", problem="What next?", problem_type="multiple choice", data_type="text", media_path=None,
    options=("A. water plant", "B. put soil in pot"), solution="<answer>B</answer>", answer="B", origin=f"{Path('v.jsonl')}#0",
)


@pytest.mark.parametrize(
    ("output", "strict", "lenient"),
    [
        ("<think>x</think><answer>B</answer>", 1.0, 1.0),
        ("<answer>B. put soil in pot</answer>", 0.0, 1.0),
        ("<answer>(B)</answer>", 0.0, 1.0),
        ("<answer>A</answer>", 0.0, 0.0),
        ("B", 1.0, 1.0),  # no answer block: the whole output is the answer, as in the evaluation scripts
        ("I think it is B", 0.0, 0.0),
        ("", 0.0, 0.0),
    ],
)
def test_strict_and_lenient_letter_matching(output, strict, lenient):
    for mode, headline in (("strict", strict), ("lenient", lenient)):
        score = rule_scorer(mode)(MC, output)
        assert (score.reward_strict, score.reward_lenient, score.reward) == (strict, lenient, headline)
        assert score.method == "rule"
