"""Format rewards: Video-R1 think/answer, TW-GRPO think/answer, and answer-only (no-think) completions."""

from __future__ import annotations

from data_pipelines.completion_format import is_answer_only, is_think_answer, is_tw_think_answer


def format_reward(completion: str) -> float:
    """Video-R1: 1 iff the whole completion is ``<think>…</think>``, optional whitespace, ``<answer>…</answer>``.

    Nothing may come before ``<think>`` or after ``</answer>``. An empty thought matches (TON skips are not
    penalized).
    """
    return 1.0 if is_think_answer(completion) else 0.0


def tw_format_reward(completion: str) -> float:
    """TW-GRPO: at most one ``<think>`` and one ``<answer>``, and a think block, optional whitespace, an answer
    block, then only whitespace or ``!`` to the end of the stripped completion (text before ``<think>`` is allowed).
    """
    return 1.0 if is_tw_think_answer(completion) else 0.0


def answer_format_reward(completion: str) -> float:
    """No-think completions: 1 iff the whole completion is exactly one ``<answer>…</answer>`` block.

    The content may not contain think or answer tags; nothing may come before or after the block.
    """
    return 1.0 if is_answer_only(completion) else 0.0
