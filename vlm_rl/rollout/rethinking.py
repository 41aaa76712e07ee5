"""VL-Rethinker Forced Rethinking, the model-free parts (arXiv 2504.08837; docs/algorithms.md lists our choices).

During RL rollouts some first-pass completions are (optionally) truncated, a textual "Wait…" trigger is
appended, and the policy writes a continuation. A continuation that ends correct replaces its first-pass
rollout in the group. This module holds the decisions of that protocol as plain functions on strings and
counts; the rollout step does the generation, grading and replacement. Every random choice takes an explicit
``random.Random`` so that a seeded run is reproducible, and each function documents which draws it makes.

Adaptation to this project: completions are ``<think>…</think><answer>…</answer>``, not ``\\boxed{}``, so
the official truncation rule is mapped onto the ``<answer>`` tag (see ``truncate_for_rethinking``).
"""

from __future__ import annotations

import random
import re

from data_pipelines.completion_format import ANSWER, before_last_answer, tag_pattern
from vlm_rl.config import RethinkConfig

T0 = "\n\nWait"
T1 = "\n\nWait, does it seem right?"
T2 = "\n\nWait, let's double check"
T3 = "\n\nWait, there might be a mistake"
TRIGGERS: tuple[str, str, str, str] = (T0, T1, T2, T3)

GENERIC_TRIGGER_PROBABILITY = 0.5
"""Probability of drawing a generic trigger (T0 or T1) instead of the correctness-specific one (official code)."""
T0_GIVEN_GENERIC = 0.4
"""Probability of T0 (else T1) once a generic trigger is drawn (official code)."""

_RETHINK_WORDS = ("wait,", "wait a", "alternatively")
# Either a whole <answer>/</answer> tag (matched first, so its inner word is consumed) or a free "answer" word.
_ANSWER_TAG_OR_WORD = re.compile(f"({tag_pattern(ANSWER).pattern})|(?i:answer)")


def is_eligible(
    *,
    ended_with_eos: bool,
    length: int,
    correct: bool,
    group_accuracy: float,
    config: RethinkConfig,
    rng: random.Random,
) -> bool:
    """Whether a first-pass rollout gets a rethinking attempt (the official training rule).

    Ineligible when it did not end with EOS, when ``length > config.max_first_pass_tokens``, or when it is
    incorrect and ``group_accuracy > config.group_accuracy_threshold`` (strictly above). Only a rollout that
    passes these checks consumes randomness: exactly one ``rng.random()`` draw, skipped when it is
    ``< config.skip_probability``.
    """
    if not ended_with_eos or length > config.max_first_pass_tokens:
        return False
    if not correct and group_accuracy > config.group_accuracy_threshold:
        return False
    return rng.random() >= config.skip_probability


def choose_trigger(correct: bool, rng: random.Random) -> str:
    """The training trigger for a first pass (the official code's draws).

    Draws ``u = rng.random()``. If ``u < 0.5`` a second draw ``v = rng.random()`` picks T0 (``v < 0.4``) or T1;
    otherwise there is no second draw and the result is T2 for a correct first pass, T3 for a wrong one.
    Overall: correct gives (T0, T1, T2, T3) with probabilities (0.2, 0.3, 0.5, 0), wrong gives (0.2, 0.3, 0, 0.5).
    """
    if rng.random() < GENERIC_TRIGGER_PROBABILITY:
        return T0 if rng.random() < T0_GIVEN_GENERIC else T1
    return T2 if correct else T3


def _cut_before_last(text: str, pattern: str) -> str:
    index = text.rfind(pattern)
    return text if index < 0 else text[:index]


def _cut_before_first_answer_word(text: str) -> str:
    for match in _ANSWER_TAG_OR_WORD.finditer(text):
        if match.group(1) is None:
            return text[: match.start()]
    return text


def truncate_for_rethinking(text: str, *, boxed: bool = False) -> str:
    """Shorten a first-pass completion before the trigger is appended (the official truncation rule).

    Cuts are applied in order, each to the result of the previous one and only if its pattern is found:

    1. before the last ``"Wait"`` (case-sensitive);
    2. before the last answer marker: ``"<answer>"`` (default) or ``"\\boxed"`` (``boxed=True``);
    3. before the first case-insensitive ``"answer"``; in the default mode an ``answer`` that belongs to an
       ``<answer>`` or ``</answer>`` tag does not count, in ``boxed`` mode every occurrence counts;
    4. before the last ``"\\n\\n"``;
    5. strip surrounding whitespace.

    ``boxed=True`` is the official rule verbatim. The default mode is this project's adaptation: the
    ``<answer>`` tag plays the role of ``\\boxed`` (it marks the final answer), and tag words are skipped in
    step 3 because in this format they are markup rather than prose such as "so the answer is". The search
    keeps the official first/last asymmetry: the last marker, but the first "answer". ``text`` is the completion
    alone (the assistant turn), without special tokens.
    """
    text = _cut_before_last(text, "Wait")
    if boxed:
        text = _cut_before_last(text, "\\boxed")
        index = text.lower().find("answer")
        if index >= 0:
            text = text[:index]
    else:
        text = before_last_answer(text)
        text = _cut_before_first_answer_word(text)
    text = _cut_before_last(text, "\n\n")
    return text.strip()


def maybe_truncate(text: str, config: RethinkConfig, rng: random.Random) -> str:
    """``truncate_for_rethinking(text)`` with probability ``config.truncate_probability``, else ``text`` unchanged.

    Exactly one ``rng.random()`` draw; the text is truncated when it is ``< config.truncate_probability``.
    """
    if rng.random() < config.truncate_probability:
        return truncate_for_rethinking(text)
    return text


def rethink_word_count(text: str) -> int:
    """How often `text` rethinks: occurrences of ``"wait,"``, ``"wait a"`` and ``"alternatively"`` in ``text.lower()``.

    This is not a count of the bare word ``"wait"``: ``"waiting"`` counts 0.
    """
    lowered = text.lower()
    return sum(lowered.count(word) for word in _RETHINK_WORDS)


def keep_continuation(
    *,
    new_tokens: int,
    correct: bool,
    kept_for_query: int,
    continuation_text: str,
    config: RethinkConfig,
) -> bool:
    """Whether a rethinking continuation replaces its first-pass rollout (the official keep rule).

    All must hold: ``config.min_new_tokens < new_tokens < config.max_new_tokens``; the full text (truncated
    first pass + trigger + continuation) is graded correct; fewer than ``config.max_kept_per_query``
    continuations are already kept for this query; and ``1 + rethink_word_count(continuation_text) <=
    config.max_rethink_words``, where ``continuation_text`` is the newly generated text only and the 1 stands
    for the trigger. Any correct continuation is kept, including correct→correct verifications.
    """
    return (
        config.min_new_tokens < new_tokens < config.max_new_tokens
        and correct
        and kept_for_query < config.max_kept_per_query
        and 1 + rethink_word_count(continuation_text) <= config.max_rethink_words
    )
