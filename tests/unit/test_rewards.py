"""Unit tests for vlm_rl.rewards: answer extraction, accuracy rules per problem type, format rules, pipeline."""

from __future__ import annotations

import math
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from vlm_rl.rewards import (
    PROBLEM_TYPES,
    RewardContext,
    RewardPipeline,
    accuracy_reward,
    answer_format_reward,
    builtin_rewards,
    extract_answer,
    extract_think,
    format_reward,
    free_form_reward,
    load_custom_reward,
    multi_answer_reward,
    multi_answer_strict_reward,
    multiple_choice_lenient_reward,
    multiple_choice_strict_reward,
    normalize_number,
    numerical_reward,
    ocr_reward,
    option_letter,
    regression_reward,
    register_reward,
    split_letters,
    tw_format_reward,
    word_edit_distance,
)

# ---------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>hmm</think><answer>B</answer>", "B"),
        ("<answer>\n  12.5 \n</answer>", "12.5"),
        ("<answer>A</answer> then <answer>B</answer>", "A"),
        ("<answer>line one\nline two</answer>", "line one\nline two"),
        ("<answer></answer>", ""),
        ("the answer is B", ""),
        ("<answer>B", ""),
    ],
)
def test_extract_answer(text: str, expected: str) -> None:
    assert extract_answer(text) == expected


def test_extract_think() -> None:
    assert extract_think("<think> let me think </think><answer>B</answer>") == "let me think"
    assert extract_think("<think>\n\n</think><answer>130</answer>") == ""
    assert extract_think("<answer>130</answer>") is None


@pytest.mark.parametrize("text", ["B,C", "B, C", "(B),(C)", " (B) , (C) ", "C,B", "B,C,B", "B,C,"])
def test_split_letters_forms(text: str) -> None:
    assert split_letters(text) == frozenset({"B", "C"})


def test_split_letters_edge_cases() -> None:
    assert split_letters("") == frozenset()
    assert split_letters("A.") == frozenset({"A."})
    assert split_letters("a") == frozenset({"a"})


# ---------------------------------------------------------------- multiple choice


@pytest.mark.parametrize(
    ("answer", "strict", "lenient"),
    [
        ("B", 1.0, 1.0),
        (" B ", 1.0, 1.0),
        ("(B)", 0.0, 1.0),
        ("B. put soil in pot", 0.0, 1.0),
        ("Because of the pot, B", 0.0, 1.0),
        ("C", 0.0, 0.0),
        ("(C) water the plant", 0.0, 0.0),
        ("b", 0.0, 0.0),
        ("", 0.0, 0.0),
    ],
)
def test_multiple_choice_strict_vs_lenient(answer: str, strict: float, lenient: float) -> None:
    assert multiple_choice_strict_reward(answer, "B") == strict
    assert multiple_choice_lenient_reward(answer, "B") == lenient


def test_option_letter() -> None:
    assert option_letter("(D)") == "D"
    assert option_letter("Answer: C. red") == "C"
    assert option_letter("no capital letter here") is None


def test_lenient_mc_ground_truth_forms() -> None:
    assert multiple_choice_lenient_reward("B", "B.") == 1.0  # old SEED-Bench-R1 solutions: "<answer>B.</answer>"
    assert multiple_choice_lenient_reward("yes", "yes") == 1.0  # gold without a letter: strict fallback
    assert multiple_choice_lenient_reward("no", "yes") == 0.0


# ---------------------------------------------------------------- numerical


def test_normalize_number() -> None:
    assert normalize_number("1,000") == 1000.0
    assert normalize_number(" 12.5 ") == 12.5
    assert normalize_number("twelve") is None
    assert normalize_number("") is None


@pytest.mark.parametrize(
    ("answer", "gt", "expected"),
    [
        ("3", "3", 1.0),
        ("3.0", "3", 0.0),  # decimal presence must agree
        ("3", "3.0", 0.0),
        ("3.0", "3.00", 1.0),
        ("12.5", "12.50", 1.0),
        ("12.504", "12.5", 1.0),  # equality at 2 decimals
        ("12.51", "12.5", 0.0),
        ("1000", "1,000", 0.0),  # a comma counts as decimal presence
        ("1,000", "1,000", 1.0),
        ("1,000.5", "1000.50", 1.0),
        ("4", "3", 0.0),
        ("three", "3", 0.0),  # unparsable -> 0
        ("", "3", 0.0),
        ("3", "abc", 0.0),
        ("inf", "3", 0.0),  # GRPO-CARE fix
        ("nan", "3", 0.0),
        ("inf", "inf", 0.0),
    ],
)
def test_numerical_reward(answer: str, gt: str, expected: float) -> None:
    assert numerical_reward(answer, gt) == expected


# ---------------------------------------------------------------- OCR


def test_word_edit_distance() -> None:
    assert word_edit_distance([], []) == 0
    assert word_edit_distance(["a", "b", "c"], []) == 3
    assert word_edit_distance([], ["a", "b"]) == 2
    assert word_edit_distance(["a", "b", "c"], ["b", "c", "d"]) == 2  # delete a, insert d
    assert word_edit_distance(["a", "b", "c"], ["a", "x", "c"]) == 1


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("FRESH BREAD DAILY", 1.0),
        ("FRESH  BREAD\nDAILY", 1.0),  # whitespace split
        ("FRESH BREAD", 2 / 3),  # 1 deletion / 3 words
        ("FRESH BRED DAILY", 2 / 3),  # 1 substitution
        ("FRESH BREAD DAILY TODAY NOW", 1 / 3),  # 2 insertions
        ("fresh bread daily", 0.0),  # case-sensitive: 3 substitutions
        ("", 0.0),
        ("a b c d e f g", 0.0),  # WER 7/3 -> clipped
    ],
)
def test_ocr_reward(answer: str, expected: float) -> None:
    assert ocr_reward(answer, "FRESH BREAD DAILY") == pytest.approx(expected)


def test_ocr_empty_reference() -> None:
    assert ocr_reward("", "") == 1.0
    assert ocr_reward("x", "") == 0.0  # 1 / max(1, 0)


# ---------------------------------------------------------------- free-form


def test_free_form_reward() -> None:
    assert free_form_reward("Because it is raining.", "Because it is raining.") == pytest.approx(1.0)
    assert free_form_reward("sunny weather outside", "Because it is raining.") == 0.0
    assert free_form_reward("", "Because it is raining.") == 0.0
    # rouge1 F = 0.8, rouge2 F = 2/3, rougeL F = 0.8
    assert free_form_reward("the cat", "the cat sat") == pytest.approx((0.8 + 2 / 3 + 0.8) / 3)
    # stemming: "rains" and "raining" both stem to "rain"
    assert free_form_reward("it raining", "it rains") == pytest.approx(1.0)


# ---------------------------------------------------------------- regression


@pytest.mark.parametrize(
    ("answer", "gt", "expected"),
    [
        ("1.8", "1.8", 1.0),
        ("0.9", "1.8", 0.5),
        ("2.7", "1.8", 0.5),
        ("5", "1.8", 0.0),  # relative error clipped to 1
        ("-1.8", "1.8", 0.0),
        ("2", "1.8", 1 - 0.2 / 1.8),
        ("1,800", "1800", 1.0),  # no decimal-presence rule for regression
        ("far", "1.8", 0.0),  # None fix
        ("1.8", "far", 0.0),
        ("", "1.8", 0.0),
        ("nan", "1.8", 0.0),  # unfixed Video-R1 would give 1.0 here
        ("inf", "1.8", 0.0),
        ("0", "0", 0.0),  # the epsilons make gt = out = 0 a relative error of 1
    ],
)
def test_regression_reward(answer: str, gt: str, expected: float) -> None:
    assert regression_reward(answer, gt) == pytest.approx(expected, abs=1e-8)


# ---------------------------------------------------------------- multi-answer (TW-GRPO)


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [("A,C", 1.0), ("A", 0.5), ("C", 0.5), ("A,B", 0.0), ("B", 0.0), ("A,C,B", 0.0), ("", 0.0)],
)
def test_multi_answer_soft_reward_table(prediction: str, expected: float) -> None:
    """TW-GRPO's soft accuracy (arXiv 2505.24718), gold "A,C": |pred| / |gold| when pred is a subset, else 0."""
    assert multi_answer_reward(prediction, "A,C") == expected


def test_multi_answer_forms_and_strict() -> None:
    assert multi_answer_reward("C, A", "A,C") == 1.0
    assert multi_answer_reward("(A),(C)", "A,C") == 1.0
    assert multi_answer_reward("A.", "A,C") == 0.0  # no period stripping
    assert multi_answer_reward("A", "A,B,C,D") == 0.25
    assert multi_answer_reward("A", "") == 0.0
    assert multi_answer_strict_reward("C,A", "A,C") == 1.0
    assert multi_answer_strict_reward("A", "A,C") == 0.0
    assert multi_answer_strict_reward("A,B", "A,C") == 0.0
    assert multi_answer_strict_reward("", "A,C") == 0.0


# ---------------------------------------------------------------- dispatch


def test_accuracy_reward_dispatch() -> None:
    done = "<think>let me think</think><answer>{}</answer>"
    assert accuracy_reward(done.format(" B "), "<answer>B</answer>", "multiple choice") == 1.0
    assert accuracy_reward(done.format("(B)"), "<answer>B</answer>", "multiple choice") == 0.0
    assert accuracy_reward(done.format("(B)"), "<answer>B</answer>", "multiple choice", mc_mode="lenient") == 1.0
    assert accuracy_reward(done.format("12.50"), "<answer>12.5</answer>", "numerical") == 1.0
    assert accuracy_reward(done.format("FRESH BREAD"), "<answer>FRESH BREAD DAILY</answer>", "OCR") == pytest.approx(
        2 / 3
    )
    assert accuracy_reward(done.format("it is raining"), "<answer>it is raining</answer>", "free-form") == (
        pytest.approx(1.0)
    )
    assert accuracy_reward(done.format("0.9"), "<answer>1.8</answer>", "regression") == pytest.approx(0.5)
    assert accuracy_reward(done.format("A"), "<answer>A,C</answer>", "multi-answer") == 0.5
    assert accuracy_reward(done.format("A"), "<answer>A,C</answer>", "multi-answer", multi_mode="strict") == 0.0


def test_accuracy_reward_extraction_rules() -> None:
    # no answer tags in the completion: no fallback to the full text
    assert accuracy_reward("B", "<answer>B</answer>", "multiple choice") == 0.0
    # solution without tags is used stripped
    assert accuracy_reward("<answer>B</answer>", "  B \n", "multiple choice") == 1.0
    # empty answer tags in the solution are an empty ground truth, not the raw solution text
    assert accuracy_reward("<answer>x</answer>", "<answer></answer>", "multiple choice") == 0.0


def test_accuracy_reward_unknown_type_raises() -> None:
    with pytest.raises(ValueError, match="'essay'") as info:
        accuracy_reward("<answer>B</answer>", "<answer>B</answer>", "essay")
    for name in PROBLEM_TYPES:
        assert repr(name) in str(info.value)


def test_accuracy_reward_unknown_mode_raises() -> None:
    with pytest.raises(ValueError, match="mc_mode"):
        accuracy_reward("<answer>B</answer>", "B", "multiple choice", mc_mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="multi_mode"):
        accuracy_reward("<answer>B</answer>", "B", "multi-answer", multi_mode="iou")  # type: ignore[arg-type]


# ---------------------------------------------------------------- format


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>reasoning</think><answer>B</answer>", 1.0),
        ("<think>line 1\nline 2</think>\n\n<answer>B</answer>", 1.0),
        ("<think>\n\n</think><answer>130</answer>", 1.0),  # TON empty thought
        ("<think>r</think><answer>B</answer> and more", 0.0),  # text after </answer>
        ("<think>r</think><answer>B</answer>\n", 0.0),
        ("Sure. <think>r</think><answer>B</answer>", 0.0),  # text before <think>
        ("<answer>B</answer>", 0.0),
        ("<answer>B</answer><think>r</think>", 0.0),
        ("<think>r</think> so <answer>B</answer>", 0.0),
        ("<think>r</think><answer>B", 0.0),
    ],
)
def test_format_reward(completion: str, expected: float) -> None:
    assert format_reward(completion) == expected


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>r</think><answer>B</answer>", 1.0),
        ("Sure. <think>r</think> <answer>B</answer>", 1.0),  # not anchored at the start
        ("<think>r</think><answer>B</answer> !!\n", 1.0),  # whitespace and '!' allowed at the end
        ("\n<think>r</think><answer>B</answer>\n", 1.0),
        ("<think>r</think><answer>B</answer> done", 0.0),
        ("<think>a</think><think>b</think><answer>B</answer>", 0.0),  # two <think>
        ("<think>a</think><answer>B</answer><answer>C</answer>", 0.0),  # two <answer>
        ("<answer>B</answer>", 0.0),
    ],
)
def test_tw_format_reward(completion: str, expected: float) -> None:
    assert tw_format_reward(completion) == expected


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<answer>B</answer>", 1.0),
        ("<answer>\nthe cat\n</answer>", 1.0),
        ("<think>r</think><answer>B</answer>", 0.0),
        ("<answer>B</answer> extra", 0.0),
        ("so <answer>B</answer>", 0.0),
        ("<answer>a</answer><answer>b</answer>", 0.0),
        ("<answer><think>r</think>B</answer>", 0.0),
        ("B", 0.0),
    ],
)
def test_answer_format_reward(completion: str, expected: float) -> None:
    assert answer_format_reward(completion) == expected


# ---------------------------------------------------------------- pipeline


def _ctx(
    completion: str, solution: str = "<answer>B</answer>", problem_type: str = "multiple choice", sid: str = "s0"
) -> RewardContext:
    return RewardContext(
        completion=completion, solution=solution, problem_type=problem_type, options=("A. x", "B. y"), sample_id=sid
    )


def test_builtin_registry() -> None:
    assert {"accuracy", "accuracy_lenient", "accuracy_binary", "format", "tw_format", "answer_format"} <= set(
        builtin_rewards()
    )
    with pytest.raises(ValueError, match="already registered"):
        register_reward("format", lambda ctx: 0.0)


def test_pipeline_named_scores_and_weighted_total() -> None:
    pipeline = RewardPipeline({"accuracy": 1.0, "format": 0.5, "accuracy_lenient": 0.0})
    contexts = [
        _ctx("<think>r</think><answer>B</answer>", sid="a"),
        _ctx("<think>r</think><answer>(B)</answer>", sid="b"),
        _ctx("<answer>B</answer>", sid="c"),
        _ctx("<think>r</think><answer>C</answer>", sid="d"),
    ]
    result = pipeline(contexts)
    assert result.names == ("accuracy", "format", "accuracy_lenient") == pipeline.names
    assert set(result.scores) == set(result.names)
    for scores in (*result.scores.values(), result.total):
        assert scores.dtype == torch.float32
        assert scores.shape == (4,)
    assert result.scores["accuracy"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert result.scores["format"].tolist() == [1.0, 1.0, 0.0, 1.0]
    # weight 0: still computed and reported, but contributes nothing to the total
    assert result.scores["accuracy_lenient"].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert result.total.tolist() == [1.5, 0.5, 1.0, 0.5]
    assert dict(pipeline.weights) == {"accuracy": 1.0, "format": 0.5, "accuracy_lenient": 0.0}


def test_pipeline_mixed_problem_types_and_empty_batch() -> None:
    pipeline = RewardPipeline({"accuracy": 2.0, "tw_format": 1.0})
    result = pipeline(
        [
            _ctx("<think>r</think><answer>A</answer>", "<answer>A,C</answer>", "multi-answer"),
            _ctx("<think>r</think><answer>0.9</answer>", "<answer>1.8</answer>", "regression"),
        ]
    )
    assert result.total.tolist() == pytest.approx([2.0, 2.0])
    empty = pipeline([])
    assert empty.total.shape == (0,)
    assert empty.scores["accuracy"].shape == (0,)


@pytest.fixture
def custom_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = "vlmrl_test_custom_rewards"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            def length_bonus(ctx):
                return min(1.0, len(ctx.completion) / 100) * ctx.extra.get("scale", 1.0)

            def not_finite(ctx):
                return float("nan")

            def not_a_number(ctx):
                return "1.0"

            def boom(ctx):
                raise RuntimeError("scorer crashed")

            NOT_CALLABLE = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    yield name
    sys.modules.pop(name, None)


def test_pipeline_custom_reward(custom_module: str) -> None:
    pipeline = RewardPipeline({"format": 1.0, "bonus": 2.0}, custom={"bonus": f"{custom_module}:length_bonus"})
    completion = "<think>r</think><answer>B</answer>"  # 34 characters
    contexts = [
        _ctx(completion),
        RewardContext(completion, "<answer>B</answer>", "multiple choice", (), "s1", extra={"scale": 0.5}),
    ]
    result = pipeline(contexts)
    assert result.names == ("format", "bonus")
    assert result.scores["bonus"].tolist() == pytest.approx([0.34, 0.17])
    assert result.total.tolist() == pytest.approx([1.68, 1.34])


def test_load_custom_reward(custom_module: str) -> None:
    fn = load_custom_reward(f"{custom_module}:length_bonus")
    assert fn(_ctx("x" * 50)) == 0.5


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon_here", "must look like"),
        (":length_bonus", "must look like"),
        ("{mod}:", "must look like"),
        ("vlmrl_no_such_module_xyz:fn", "cannot import module"),
        ("{mod}:missing_fn", "no attribute 'missing_fn'"),
        ("{mod}:NOT_CALLABLE", "not callable"),
    ],
)
def test_bad_custom_reward_target(custom_module: str, target: str, message: str) -> None:
    target = target.format(mod=custom_module)
    with pytest.raises(ValueError, match=message) as info:
        RewardPipeline({"x": 1.0}, custom={"x": target})
    assert repr(target) in str(info.value)


def test_pipeline_config_errors(custom_module: str) -> None:
    with pytest.raises(ValueError, match="unknown reward 'acuracy'.*accuracy"):
        RewardPipeline({"acuracy": 1.0})
    with pytest.raises(ValueError, match="at least one"):
        RewardPipeline({})
    with pytest.raises(ValueError, match="clashes with a built-in"):
        RewardPipeline({"format": 1.0}, custom={"format": f"{custom_module}:length_bonus"})
    with pytest.raises(ValueError, match="has no weight"):
        RewardPipeline({"format": 1.0}, custom={"bonus": f"{custom_module}:length_bonus"})
    with pytest.raises(ValueError, match="finite number"):
        RewardPipeline({"format": math.inf})
    with pytest.raises(ValueError, match="finite number"):
        RewardPipeline({"format": "1"})  # type: ignore[dict-item]


@pytest.mark.parametrize(("fn", "message"), [("not_finite", "non-finite"), ("not_a_number", "returned str")])
def test_pipeline_bad_return_value(custom_module: str, fn: str, message: str) -> None:
    pipeline = RewardPipeline({"bad": 1.0}, custom={"bad": f"{custom_module}:{fn}"})
    with pytest.raises(ValueError, match=message) as info:
        pipeline([_ctx("<answer>B</answer>", sid="sample-42")])
    assert "'bad'" in str(info.value)
    assert "'sample-42'" in str(info.value)


def test_pipeline_reward_exception_names_reward_and_sample(custom_module: str) -> None:
    pipeline = RewardPipeline({"boom": 1.0}, custom={"boom": f"{custom_module}:boom"})
    with pytest.raises(RuntimeError, match="scorer crashed") as info:
        pipeline([_ctx("<answer>B</answer>", sid="sample-7")])
    assert any("'boom'" in note and "'sample-7'" in note for note in info.value.__notes__)


def test_pipeline_unknown_problem_type_raises() -> None:
    with pytest.raises(ValueError, match="unknown problem_type 'essay'"):
        RewardPipeline({"accuracy": 1.0})([_ctx("<answer>B</answer>", problem_type="essay")])
