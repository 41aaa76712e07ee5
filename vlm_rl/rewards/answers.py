"""Pull the ``<think>`` and ``<answer>`` parts out of a completion, and split multi-answer letter lists."""

from __future__ import annotations

import re

_ANSWER_RE = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)
_THINK_RE = re.compile(r"<think>\s*(.*?)\s*</think>", re.DOTALL)
_WHITESPACE_RE = re.compile(r"\s+")


def find_answer(text: str) -> str | None:
    """Content of the first ``<answer>…</answer>`` block, stripped; ``None`` when there is no such block."""
    match = _ANSWER_RE.search(text)
    return match.group(1).strip() if match else None


def extract_answer(text: str) -> str:
    """Content of the first ``<answer>…</answer>`` block, stripped; ``""`` when there is none.

    This is the Video-R1 / GRPO-CARE training rule: there is no fallback to the whole text.
    """
    answer = find_answer(text)
    return "" if answer is None else answer


def extract_think(text: str) -> str | None:
    """Content of the first ``<think>…</think>`` block, stripped; ``None`` when there is none.

    An empty thought (TON's ``<think>\\n\\n</think>``) gives ``""``, which is how a skip is detected.
    """
    match = _THINK_RE.search(text)
    return match.group(1).strip() if match else None


def split_letters(ans: str) -> frozenset[str]:
    """The set of option labels in a multi-answer string: ``"B,C"``, ``"B, C"`` and ``"(B),(C)"`` all give {B, C}.

    Following TW-GRPO, all whitespace is deleted and the string is split on ``,``; in addition one pair of
    enclosing parentheses is removed from each piece and empty pieces are dropped (so ``""`` gives the empty
    set). There is no case folding and no other clean-up: ``"A."`` stays ``"A."``.
    """
    pieces = _WHITESPACE_RE.sub("", ans).split(",")
    letters = set()
    for piece in pieces:
        if len(piece) >= 2 and piece[0] == "(" and piece[-1] == ")":
            piece = piece[1:-1]
        if piece:
            letters.add(piece)
    return frozenset(letters)
