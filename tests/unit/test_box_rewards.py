"""Box rewards: REC accuracy at IoU 0.5, the continuous IoU, detection F1 with greedy one-to-one matching, and
their place among the problem types, prompts and registered rewards."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_pipelines import schema
from data_pipelines.prompts import SHORT_TYPE_TEMPLATES, TYPE_TEMPLATES, build_prompt_text
from data_pipelines.schema import Sample
from vlm_rl.rewards import (
    RewardContext,
    RewardPipeline,
    accuracy_reward,
    box_accuracy,
    box_iou_score,
    builtin_rewards,
    detection_f1,
    f1_at_iou,
    match_boxes,
    scorer_for,
)
from vlm_rl.rewards import accuracy as accuracy_module

A, B, C = (0, 0, 10, 10), (20, 20, 30, 30), (40, 0, 50, 10)


def _ctx(completion: str, solution: str, problem_type: str) -> RewardContext:
    return RewardContext(completion, solution, problem_type, (), "s1")


# --- one box ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "accuracy", "iou"),
    [
        ("[0, 0, 10, 10]", 1.0, 1.0),
        ("[0, 0, 10, 5]", 1.0, 0.5),
        ("[0, 0, 10, 4.9]", 0.0, 0.49),
        ('{"bbox_2d": [0, 0, 10, 8], "label": "x"}', 1.0, 0.8),
        ("[20, 20, 30, 30]", 0.0, 0.0),
        ("somewhere on the left", 0.0, 0.0),
        ("", 0.0, 0.0),
    ],
)
def test_box_accuracy_is_iou_at_least_half(answer: str, accuracy: float, iou: float) -> None:
    assert box_iou_score(answer, "[0, 0, 10, 10]") == pytest.approx(iou)
    assert box_accuracy(answer, "[0, 0, 10, 10]") == accuracy


def test_box_ground_truth_without_a_box_is_an_error() -> None:
    with pytest.raises(ValueError, match="holds no"):
        box_accuracy("[0, 0, 1, 1]", "the man")


# --- matching and F1 ----------------------------------------------------------------------------------------


def test_greedy_matching_takes_the_best_pairs_first_and_uses_each_box_once() -> None:
    truth = [(5, 0, 15, 10), (0, 0, 10, 10)]
    predicted = [(2, 0, 12, 10), (0, 0, 10, 9)]
    # IoUs: p0-t1 0.67 (p0's best), p0-t0 0.54, p1-t1 0.9, p1-t0 0.31. Taking p0's best first would leave p1
    # unmatched; greedy by IoU takes p1-t1, then p0-t0.
    assert match_boxes(predicted, truth) == [(1, 1), (0, 0)]
    assert f1_at_iou(predicted, truth) == 1.0
    assert match_boxes([A, A], [A]) == [(0, 0)]
    assert match_boxes([(0, 0, 10, 4)], [A]) == []
    assert match_boxes([(0, 0, 10, 4)], [A], threshold=0.3) == [(0, 0)]


@pytest.mark.parametrize(
    ("predicted", "truth", "f1"),
    [
        ([A, B], [B, A], 1.0),
        ([A, A], [A], 2 / 3),
        ([A], [A, B], 2 / 3),
        ([A, B, C], [A], 0.5),
        ([C], [A, B], 0.0),
        ([], [A], 0.0),
        ([A], [], 0.0),
        ([], [], 1.0),
        ([(0, 0, 10, 6), (20, 20, 30, 24)], [A, B], 0.5),
    ],
)
def test_f1_at_iou(predicted: list, truth: list, f1: float) -> None:
    assert f1_at_iou(predicted, truth) == pytest.approx(f1)


def test_detection_f1_reads_answers_and_scores_unreadable_ones_zero() -> None:
    truth = "[[0, 0, 10, 10], [20, 20, 30, 30]]"
    assert detection_f1("[[20, 20, 30, 30], [0, 0, 10, 10]]", truth) == 1.0
    assert detection_f1('[{"bbox_2d": [0, 0, 10, 10], "label": "circle"}]', truth) == pytest.approx(2 / 3)
    assert detection_f1("[0, 0, 10, 10]", truth) == pytest.approx(2 / 3)
    assert detection_f1("[]", "[]") == 1.0
    assert detection_f1("none", "[]") == 0.0
    assert detection_f1("[]", truth) == 0.0
    with pytest.raises(ValueError, match="not a list"):
        detection_f1("[]", "circles")


# --- problem types, scorers, rewards and prompts ------------------------------------------------------------


def test_box_types_are_problem_types_with_their_scorers() -> None:
    assert {"box", "detection"} <= set(schema.PROBLEM_TYPES)
    assert set(accuracy_module.PROBLEM_TYPES) == set(schema.PROBLEM_TYPES)
    assert scorer_for("box") is box_accuracy
    assert scorer_for("detection") is detection_f1
    assert accuracy_reward("<think>x</think><answer>[0, 0, 10, 6]</answer>", "<answer>[0, 0, 10, 10]</answer>", "box") == 1.0
    assert accuracy_reward("<answer>[0, 0, 10, 4]</answer>", "<answer>[0, 0, 10, 10]</answer>", "box") == 0.0
    assert accuracy_reward("[0, 0, 10, 10]", "<answer>[0, 0, 10, 10]</answer>", "box") == 0.0
    assert accuracy_reward("<answer>[[0, 0, 10, 10]]</answer>", "[[0, 0, 10, 10], [20, 20, 30, 30]]", "detection") == (
        pytest.approx(2 / 3)
    )


def test_registered_iou_and_detection_f1_rewards() -> None:
    rewards = builtin_rewards()
    assert rewards["iou"](_ctx("<answer>[0, 0, 10, 4]</answer>", "<answer>[0, 0, 10, 10]</answer>", "box")) == (
        pytest.approx(0.4)
    )
    assert rewards["detection_f1"](_ctx("<answer>[[0, 0, 10, 10]]</answer>", "<answer>[]</answer>", "detection")) == 0.0
    with pytest.raises(ValueError, match="scores box samples.*'detection'"):
        rewards["iou"](_ctx("<answer>[]</answer>", "<answer>[]</answer>", "detection"))
    with pytest.raises(ValueError, match="scores detection samples.*'multiple choice'"):
        rewards["detection_f1"](_ctx("<answer>A</answer>", "<answer>A</answer>", "multiple choice"))


def test_pipeline_scores_a_box_group() -> None:
    pipeline = RewardPipeline({"accuracy": 1.0, "iou": 0.5})
    solution = "<answer>[0, 0, 10, 10]</answer>"
    result = pipeline([_ctx(f"<answer>{a}</answer>", solution, "box") for a in ("[0, 0, 10, 10]", "[0, 0, 10, 3]", "x")])
    assert result.scores["accuracy"].tolist() == [1.0, 0.0, 0.0]
    assert result.total.tolist() == pytest.approx([1.5, 0.15, 0.0])


@pytest.mark.parametrize("problem_type", ["box", "detection"])
def test_prompts_ask_for_pixel_boxes(problem_type: str) -> None:
    sample = Sample("s", "Where is the red circle?", problem_type, "image", Path("x.png"), (), "", "", "x#0")
    for template, suffixes in (("video_r1_train", TYPE_TEMPLATES), ("short", SHORT_TYPE_TEMPLATES)):
        text = build_prompt_text(sample, template)
        assert text.endswith(suffixes[problem_type]) and "x1, y1, x2, y2" in text and "pixels" in text
    assert ("[[" in TYPE_TEMPLATES[problem_type]) == (problem_type == "detection")
