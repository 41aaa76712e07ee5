"""The answer tokens' share of the token weights (`tw/answer_weight_ratio`)."""

import pytest
import torch

from vlm_rl.training.weight_stats import answer_weight_ratios


def _decode(ids):
    return "".join(chr(i) for i in ids)


def _row(text: str, width: int) -> list[int]:
    return [ord(c) for c in text] + [0] * (width - len(text))


def test_the_ratio_compares_the_answer_tokens_mean_weight_with_the_whole_completions():
    texts = ["<think>ab</think><answer>C</answer>", "<think>no answer here</think>"]
    width = max(map(len, texts)) + 2
    ids = [[ord(c) for c in t] for t in texts]
    mask = torch.zeros(2, width)
    for row, text in enumerate(texts):
        mask[row, : len(text)] = 1
    weights = mask.clone()
    answer_at = texts[0].index("C")
    weights[0, answer_at] = 3.0
    weights[0, len(texts[0]) :] = 50.0  # padding: masked, so never counted
    n = len(texts[0])
    assert answer_weight_ratios(weights, mask, texts, ids, _decode) == [pytest.approx(3.0 / ((n - 1 + 3.0) / n))]


def test_uniform_weights_give_one_and_rows_without_an_answer_are_left_out():
    texts = ["<answer>A,B</answer>", "plain text"]
    ids = [[ord(c) for c in t] for t in texts]
    mask = torch.ones(2, max(map(len, texts)))
    assert answer_weight_ratios(torch.ones_like(mask) * 1.7, mask, texts, ids, _decode) == [pytest.approx(1.0)]
