"""Where token weighting puts its weight: the answer tokens' share, for TW-GRPO's claim that the weights concentrate
on the tokens that decide the answer."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from data_pipelines.completion_format import answer_content_span
from vlm_rl.models.spans import Decode, tokens_in_char_span


def answer_weight_ratios(
    weights: torch.Tensor, mask: torch.Tensor, texts: Sequence[str], completion_ids: Sequence[Sequence[int]], decode: Decode
) -> list[float]:
    """Per completion with an answer block: mean token weight on the answer's content tokens over the mean token
    weight on all its completion tokens (1 = no concentration, above 1 = weight leans to the answer).

    ``weights`` and ``mask`` are ``[B, C]``; row ``i`` belongs to ``texts[i]`` and ``completion_ids[i]``
    (``decode(completion_ids[i]) == texts[i]``).
    """
    ratios = []
    for row, (text, ids) in enumerate(zip(texts, completion_ids)):
        span = answer_content_span(text)
        if span is None:
            continue
        first, offsets = tokens_in_char_span(decode, ids, span)
        if not offsets:
            continue
        valid = mask[row].bool()
        overall = weights[row][valid].mean()
        answer = weights[row, first : first + len(offsets)][valid[first : first + len(offsets)]]
        if len(answer) and overall > 0:
            ratios.append(float(answer.mean() / overall))
    return ratios
