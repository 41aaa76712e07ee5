"""Rewards of a multi-turn frame-search rollout (TimeSearch-R, arXiv 2511.05489, reward "v7").

A search rollout's reward context carries its kept model turns in ``extra["turns"]``:

- ``search_format``: 1 when some turn answers, every answering turn is ``<think>…</think> <answer>…</answer>``,
  every calling turn is ``<think>…</think> <tool_call>…</tool_call>`` and no turn holds both, else 0;
- ``search_accuracy``: the score of the rollout's answer when it gave exactly one ``<answer>`` over all its
  turns, else 0 (several answers, possible after parse errors, score 0).

Answers are scored by problem type; multiple choice uses the search recipe's letter rule
(`search_answer_score`). The completeness term (GRPO-CSV) is added by the trainer's verification step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from data_pipelines.completion_format import answer_or_text, find_answer
from vlm_rl.rewards.accuracy import scorer_for
from vlm_rl.rewards.pipeline import RewardContext, register_reward

_THINK_ANSWER = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
_THINK_CALL = re.compile(r"<think>.*?</think>\s*<tool_call>.*?</tool_call>", re.DOTALL)
_LEADING_LETTER = re.compile(r"([A-J])(?:$|[.\s])")


def search_format(turns: Sequence[str]) -> float:
    """1.0 when the model turns of one rollout follow the search format (module docstring), else 0.0."""
    answered = False
    for turn in turns:
        has_answer, has_call = "<answer>" in turn, "<tool_call>" in turn
        if has_answer and has_call:
            return 0.0
        if has_answer:
            answered = True
            if not _THINK_ANSWER.fullmatch(turn.strip()):
                return 0.0
        if has_call and not _THINK_CALL.fullmatch(turn.strip()):
            return 0.0
    return float(answered)


def answers(turns: Sequence[str]) -> list[str]:
    """The ``<answer>`` contents of every turn that holds one, in order."""
    found = (find_answer(turn) for turn in turns)
    return [a for a in found if a is not None]


def mc_letter(text: str) -> str | None:
    """The option letter a multiple-choice answer starts with: a letter A-J alone or followed by '.' or a space."""
    found = _LEADING_LETTER.match(text.strip())
    return None if found is None else found.group(1)


def search_answer_score(answer: str, ground_truth: str, problem_type: str) -> float:
    """Score in [0, 1] of one answer. Multiple choice: 1 when both start with the same option letter ("B",
    "B. red"); an answer or ground truth without a letter scores 0 (never "" == ""). Other types: the
    problem type's scorer (temporal IoU for grounding, exact order for sequences)."""
    if problem_type == "multiple choice":
        letter = mc_letter(answer)
        return float(letter is not None and letter == mc_letter(ground_truth))
    return scorer_for(problem_type)(answer, ground_truth)


def _turns(ctx: RewardContext) -> Sequence[str]:
    if "turns" not in ctx.extra:
        raise ValueError(f"{ctx.sample_id}: search rewards need a multi-turn rollout (enable search.enabled)")
    return ctx.extra["turns"]


def _search_accuracy(ctx: RewardContext) -> float:
    given = answers(_turns(ctx))
    return search_answer_score(given[0], answer_or_text(ctx.solution), ctx.problem_type) if len(given) == 1 else 0.0


register_reward("search_format", lambda ctx: search_format(_turns(ctx)))
register_reward("search_accuracy", _search_accuracy)
