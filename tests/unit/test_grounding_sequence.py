"""TimeSearch-R's grounding and sequence answers: prompts that ask for them and scorers that grade them."""

from __future__ import annotations

import json

import pytest

from data_pipelines.prompts import build_prompt_text
from data_pipelines.schema import Sample
from vlm_rl.rewards import accuracy_reward
from vlm_rl.rewards.accuracy import grounding_reward, sequence_reward

SPAN = json.dumps({"start_time": 10.0, "end_time": 20.0})


def _sample(problem_type: str, answer: str) -> Sample:
    return Sample(
        problem="When does the red square appear?", problem_type=problem_type, answer=answer, data_type="video",
        media_path=None, options=(), solution=f"<answer>{answer}</answer>", sample_id="0", origin="records.jsonl#0",
    )


@pytest.mark.parametrize("template", ["video_r1_train", "video_r1_eval", "short"])
def test_prompts_ask_for_a_span_or_an_order(template):
    grounding = build_prompt_text(_sample("grounding", SPAN), template)
    sequence = build_prompt_text(_sample("sequence", "(b)(a)"), template)
    assert '{"start_time": s, "end_time": e}' in grounding
    assert "(b)(a)(c)" in sequence


@pytest.mark.parametrize(
    ("predicted", "expected"),
    [
        ({"start_time": 10.0, "end_time": 20.0}, 1.0),
        ({"start_time": 15.0, "end_time": 25.0}, 5.0 / 15.0),
        ({"start_time": 12.0, "end_time": 14.0}, 2.0 / 10.0),
        ({"start_time": 30.0, "end_time": 40.0}, 0.0),
        ({"start_time": 20.0, "end_time": 10.0}, 0.0),
    ],
)
def test_grounding_is_the_iou_of_the_spans(predicted, expected):
    assert grounding_reward(json.dumps(predicted), SPAN) == pytest.approx(expected, abs=1e-6)
    completion = f"<think>it shows up late</think><answer>{json.dumps(predicted)}</answer>"
    assert accuracy_reward(completion, SPAN, "grounding") == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("text", ["", "10 to 20", '{"start_time": 10}', "[10, 20]", '{"start_time": "x", "end_time": 3}'])
def test_a_prediction_that_is_not_a_span_scores_zero(text):
    assert grounding_reward(text, SPAN) == 0.0


def test_sequence_is_exact_order():
    assert sequence_reward("(b)(a)(c)", "(b)(a)(c)") == 1.0
    assert sequence_reward("( B ) (a)(c)", "(b)(a)(c)") == 1.0
    assert sequence_reward("(a)(b)(c)", "(b)(a)(c)") == 0.0
    assert sequence_reward("(b)(a)", "(b)(a)(c)") == 0.0
    assert sequence_reward("b, a, c", "(b)(a)(c)") == 0.0
    assert accuracy_reward("<answer>(b)(a)(c)</answer>", "(b)(a)(c)", "sequence") == 1.0
