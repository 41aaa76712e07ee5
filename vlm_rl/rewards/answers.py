"""Split multi-answer letter lists; the answer itself is parsed by `data_pipelines.completion_format`."""

from __future__ import annotations

import re

_WHITESPACE_RE = re.compile(r"\s+")


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
