"""Reasoning–answer consistency of a compare completion: does the answer follow from the counts its thought states?

GRPO-CARE (arXiv 2506.16141) rewards answers that follow from their own reasoning. For the synthetic ``compare``
task ("Are there more circles than squares?", ``A. yes`` / ``B. no``) that check is a rule: read the two counts
the thought states ("I count 3 circles and 2 squares.") and hold the chosen letter against them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from data_pipelines.completion_format import extract_answer, extract_think
from data_pipelines.synthetic.vocabulary import SHAPES

NUMBER_WORDS: dict[str, int] = {
    word: value
    for value, word in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"))
}
_SHAPE = "|".join(SHAPES)
_STATED_COUNT = re.compile(rf"\b(\d+|{'|'.join(NUMBER_WORDS)})\s+({_SHAPE})s?\b", re.IGNORECASE)
_QUESTION = re.compile(rf"more\s+({_SHAPE})s?\s+than\s+({_SHAPE})s?\b", re.IGNORECASE)
_LETTER = re.compile(r"\(?([A-Za-z])\)?(?:[.:)]|\s|$)")


def question_kinds(problem: str) -> tuple[str, str] | None:
    """The two shape kinds of a compare question, in the order it names them; None when it names none."""
    found = _QUESTION.search(problem)
    return None if found is None else (found.group(1).lower(), found.group(2).lower())


def stated_counts(thought: str) -> dict[str, int] | None:
    """Shape kind → count for every "<number> <shape>s" in `thought`, in order of mention.

    None when a kind is given two different counts (the thought contradicts itself, so no count is readable).
    """
    counts: dict[str, int] = {}
    for number, shape in _STATED_COUNT.findall(thought):
        value = int(number) if number.isdigit() else NUMBER_WORDS[number.lower()]
        if counts.setdefault(shape.lower(), value) != value:
            return None
    return counts


def thought_answer_consistent(
    thought: str | Mapping[str, int], answer_letter: str, *, kinds: tuple[str, str] | None = None
) -> bool | None:
    """Whether `answer_letter` (``A`` = yes, ``B`` = no) follows from the counts in `thought`.

    `thought` is a completion (its ``<think>`` block is read), or the counts themselves as ``{kind: count}`` (a
    compare record's ``counts``). `kinds` is ``(first, second)`` of "more firsts than seconds?"; by default the
    first two kinds the thought mentions. None when the thought states no readable count of both kinds (or a
    completion has no think block), or when the letter is neither A nor B.
    """
    if isinstance(thought, str):
        text = extract_think(thought)
        counts = None if text is None else stated_counts(text)
    else:
        counts = {kind.lower(): int(count) for kind, count in thought.items()}
    letter = _letter(answer_letter)
    if counts is None or letter is None:
        return None
    first, second = kinds if kinds is not None else (tuple(counts)[:2] if len(counts) >= 2 else (None, None))
    if first not in counts or second not in counts:
        return None
    return (letter == "A") == (counts[first] > counts[second])


def completion_consistent(completion: str, problem: str | None = None) -> bool | None:
    """`thought_answer_consistent` of a whole completion: its think block against its answer block's letter.

    With `problem` (the compare question), its two kinds are the ones compared. None as there, or when the
    completion has no answer.
    """
    kinds = question_kinds(problem) if problem is not None else None
    if problem is not None and kinds is None:
        raise ValueError(f"not a compare question (no 'more <shape>s than <shape>s'): {problem!r}")
    return thought_answer_consistent(completion, extract_answer(completion), kinds=kinds)


def _letter(answer: str) -> str | None:
    found = _LETTER.match(answer.strip())
    letter = None if found is None else found.group(1).upper()
    return letter if letter in ("A", "B") else None
