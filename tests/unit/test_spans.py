"""tokens_in_char_span agrees with a brute-force prefix decode on the tiny Qwen tokenizer."""

from __future__ import annotations

import functools

import pytest

from vlm_rl.models.loading import load_adapter
from vlm_rl.models.spans import tokens_in_char_span

TEXTS = [
    "<think>two squares</think><answer>3</answer>",
    "<think>café, naïve — ok</think><answer>B. résumé</answer>",
    "<answer></answer>",
    "🙂<answer>12 🙂</answer>",
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_adapter(str(tiny_model_dir)).tokenizer


def _brute_force(decode, ids, span):
    a, b = span
    ranges = [(len(decode(ids[:k])), len(decode(ids[: k + 1]))) for k in range(len(ids))]
    inside = [k for k, (s, e) in enumerate(ranges) if s < b and e > a]
    return inside, ranges


@pytest.mark.parametrize("text", TEXTS)
def test_matches_prefix_decoding_for_every_span(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    decode = functools.partial(tokenizer.decode, skip_special_tokens=True)
    decoded = decode(ids)
    assert decoded == text
    spans = [(i, j) for i in range(0, len(decoded) + 1, 3) for j in range(i, len(decoded) + 1, 4)]
    for span in spans:
        first, offsets = tokens_in_char_span(decode, ids, span)
        inside, ranges = _brute_force(decode, ids, span)
        if not inside:
            assert offsets == [] or all(s == e for s, e in offsets), span
            continue
        assert first == inside[0], span
        assert offsets == ranges[inside[0] : inside[-1] + 1], span


def test_answer_span_tokens_spell_the_answer(tokenizer):
    text = "<think>x</think><answer>42</answer>"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    decode = functools.partial(tokenizer.decode, skip_special_tokens=True)
    start = text.index("42")
    first, offsets = tokens_in_char_span(decode, ids, (start, start + 2))
    covered = decode(ids[first : first + len(offsets)])
    assert "42" in covered and "<think>" not in covered
