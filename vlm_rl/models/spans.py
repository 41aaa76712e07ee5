"""Which completion tokens cover a character span of the decoded completion text.

Sampled token ids need not be the tokenizer's canonical encoding of their text, so re-encoding the
text with an offset mapping can give other tokens. Instead, the character range of token ``k`` is
``[len(decode(ids[:k])), len(decode(ids[:k+1])))``, found by binary search over prefix lengths:
O(log C) decodes per span boundary plus one per token inside the span.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Decode = Callable[[Sequence[int]], str]


def tokens_in_char_span(decode: Decode, ids: Sequence[int], span: tuple[int, int]) -> tuple[int, list[tuple[int, int]]]:
    """First token index and the character ranges of the tokens of ``ids`` that overlap ``span``.

    ``span = [a, b)`` is a character range of ``decode(ids)``. A token overlaps when its range
    ``[s, e)`` has ``s < b and e > a``. Returns ``(k0, [(s, e) for tokens k0, k0 + 1, ...])``,
    contiguous, so entry ``i`` belongs to token ``k0 + i``; zero-width tokens (skipped special
    tokens) inside the span are listed with ``s == e``. The list is empty when no token overlaps.
    """
    start, end = span
    prefix_len: dict[int, int] = {}

    def length(k: int) -> int:
        if k not in prefix_len:
            prefix_len[k] = len(decode(ids[:k]))
        return prefix_len[k]

    def first(predicate: Callable[[int], bool]) -> int:
        lo, hi = 0, len(ids)
        while lo < hi:
            mid = (lo + hi) // 2
            if predicate(mid):
                hi = mid
            else:
                lo = mid + 1
        return lo

    k0 = first(lambda k: length(k + 1) > start)  # first token ending after the span starts
    k1 = first(lambda k: length(k) >= end)  # first token starting at or after the span ends
    return k0, [(length(k), length(k + 1)) for k in range(k0, k1)]
