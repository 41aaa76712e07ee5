"""Split a completion, finished or still streaming, into its thought and its answer for display.

A closed block is read with the reward functions' own parsers (`extract_think`, `find_answer`), so the panels
show exactly what training would score; an unclosed block (mid-stream, or cut off by the token limit) shows its
text so far. Skipping is TON's test (`is_empty_thought`): an empty ``<think></think>`` block.
"""

from __future__ import annotations

from dataclasses import dataclass

from data_pipelines.completion_format import (
    ANSWER_OPEN,
    EMPTY_THOUGHT,
    THINK_OPEN,
    extract_think,
    find_answer,
    is_empty_thought,
    open_block_content,
)

DIRECT_PREFILL = EMPTY_THOUGHT
"""What the "direct" prompt mode starts the answer with: TON's empty thought, so the model answers at once."""


@dataclass(frozen=True)
class CompletionView:
    """The parts of a completion: `think`/`answer` are None when the block never opened."""

    think: str | None
    answer: str | None
    think_closed: bool
    answer_closed: bool
    skipped_thinking: bool


def view_completion(text: str) -> CompletionView:
    """The thought and answer of `text` as the demo shows them."""
    think = extract_think(text)
    think_closed = think is not None
    if not think_closed:
        think = open_block_content(text, THINK_OPEN, ANSWER_OPEN)
    answer = find_answer(text)
    answer_closed = answer is not None
    if not answer_closed:
        answer = open_block_content(text, ANSWER_OPEN)
    return CompletionView(think, answer, think_closed, answer_closed, is_empty_thought(text))
